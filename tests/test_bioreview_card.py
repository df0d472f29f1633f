"""The BioReview card's redistribution rule: CC BY (no NC / ND clause) or CC0, from each article's own licence."""

import polars as pl
import pytest

from workflow_scripts.datasets.bioreview_card import licence_table, redistributable


@pytest.mark.parametrize("licence, open_", [
    ("https://creativecommons.org/licenses/by/4.0/", True),
    ("http://creativecommons.org/licenses/by/3.0/", True),
    ("https://creativecommons.org/publicdomain/zero/1.0/", True),
    ("This article is distributed under the terms of the CC BY 4.0 licence.", True),
    ("https://creativecommons.org/licenses/by-nc-nd/4.0/", False),
    ("CC BY-NC 4.0", False),
    ("© The Author(s), under exclusive licence to Springer Nature Limited. All rights reserved.", False),
    ("", False),
    (None, False),
])
def test_redistributable(licence, open_):
    assert redistributable(licence) is open_


def test_licence_table_counts_articles_and_concerns_per_source():
    corpus = pl.DataFrame({"source": ["nature", "nature", "elife"], "n_concerns": [2, 5, 3],
                           "license": ["All rights reserved", "https://creativecommons.org/licenses/by/4.0/",
                                       "https://creativecommons.org/licenses/by/4.0/"]})
    assert licence_table(corpus).rows(named=True) == [
        {"source": "elife", "articles": 1, "redistributable": 1, "open_concerns": 3, "not_redistributable": 0},
        {"source": "nature", "articles": 2, "redistributable": 1, "open_concerns": 5, "not_redistributable": 1},
    ]
