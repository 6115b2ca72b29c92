"""Searching the catalogue as a visitor types into the search box: every word must
start a word of a dataset's title, description or keywords, in either language (a
visitor may search in Swedish on an English page, or the other way round)."""

from __future__ import annotations

from collections.abc import Sequence

from smartcity.opendata.ckan_search import words
from smartcity.opendata.model import Dataset

# Longer than any title a visitor would type; a bound on the work one search does.
MAX_QUERY = 200


def searched_text(dataset: Dataset) -> str:
    return words(" ".join((dataset.title.sv, dataset.title.en, dataset.description.sv,
                           dataset.description.en, *dataset.keywords.sv,
                           *dataset.keywords.en)))


def search(datasets: Sequence[Dataset], q: str) -> list[Dataset]:
    """The datasets ``q`` finds, in the order given; all of them for an empty ``q``."""
    wanted = [f" {word}" for word in words(q).split()]
    found = []
    for dataset in datasets:
        text = searched_text(dataset)
        if all(word in text for word in wanted):
            found.append(dataset)
    return found
