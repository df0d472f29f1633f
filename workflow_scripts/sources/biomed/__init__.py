"""Open-peer-review biomedical journals: one collector per source, one JATS reader, one Crossref client."""
