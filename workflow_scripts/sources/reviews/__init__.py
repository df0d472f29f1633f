"""Reviewer-line sources: PeerRead and OpenReview (ICLR 2019-2021) normalized into one papers table and one reviews
table (columns: tables.py), with PDF-to-text for the OpenReview submissions (pdf_text.py)."""
