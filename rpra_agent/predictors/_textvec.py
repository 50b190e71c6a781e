"""TF-IDF / hashed word n-grams kept as plain arrays (vocabulary + IDF), so no pickle is needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer
from sklearn.preprocessing import normalize

__all__ = ["TextVectorizer"]


class TextVectorizer:
    """Sublinear TF-IDF (or hashed sublinear TF) rows of word or character n-grams, L2-normalised.

    ``params["analyzer"]`` is scikit-learn's: ``"word"`` (the default) or ``"char_wb"``
    (character n-grams inside word boundaries: robust to spelling, code and numbers).

    Fitting learns the vocabulary and the smoothed IDF with scikit-learn's
    ``CountVectorizer``; transforming rebuilds a ``CountVectorizer`` over the fixed
    vocabulary, so a saved vectorizer is just two arrays.
    """

    def __init__(self, params: Mapping[str, Any], terms: Sequence[str], idf: np.ndarray) -> None:
        self.params = dict(params)
        self.terms = [str(t) for t in terms]
        self.idf = np.asarray(idf, dtype=np.float64)
        ngram = (int(params["ngram_range"][0]), int(params["ngram_range"][1]))
        analyzer = str(params.get("analyzer", "word"))
        self._counter: CountVectorizer | HashingVectorizer | None
        if params["vectorizer"] == "hashing":
            self._counter = HashingVectorizer(
                n_features=int(params["n_features"]),
                ngram_range=ngram,
                alternate_sign=False,
                norm=None,
                analyzer=analyzer,
            )
        elif self.terms:
            vocabulary = {t: i for i, t in enumerate(self.terms)}
            self._counter = CountVectorizer(vocabulary=vocabulary, ngram_range=ngram, analyzer=analyzer)
        else:
            self._counter = None

    @property
    def width(self) -> int:
        """Number of columns produced."""
        if self.params["vectorizer"] == "hashing":
            return int(self.params["n_features"])
        return len(self.terms)

    @classmethod
    def fit(cls, params: Mapping[str, Any], texts: Sequence[str]) -> TextVectorizer:
        """Learn the vocabulary (most frequent terms with ``min_df``) and IDF from ``texts``."""
        return cls.fit_transform(params, texts)[0]

    @classmethod
    def fit_transform(cls, params: Mapping[str, Any], texts: Sequence[str]) -> tuple[TextVectorizer, sparse.csr_matrix]:
        """:meth:`fit` and the :meth:`transform` of the same ``texts``, from one pass of the analyzer.

        The fitting counts, restricted to the kept vocabulary in its sorted order, are
        exactly the counts a transform would count again, so they are weighted directly.
        """
        if params["vectorizer"] == "hashing":
            hashed = cls(params, [], np.zeros(0))
            return hashed, hashed.transform(texts)
        ngram = (int(params["ngram_range"][0]), int(params["ngram_range"][1]))
        n = len(texts)
        for min_df in dict.fromkeys((min(int(params["min_df"]), max(n, 1)), 1)):
            counter = CountVectorizer(
                ngram_range=ngram,
                min_df=min_df,
                max_features=int(params["max_features"]),
                analyzer=str(params.get("analyzer", "word")),
            )
            try:
                counts = counter.fit_transform(texts)
            except ValueError:  # empty vocabulary (e.g. no draft text at all)
                continue
            df = np.asarray((counts > 0).sum(axis=0)).ravel()
            idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
            fitted = cls(params, list(counter.get_feature_names_out()), idf)
            return fitted, fitted._weigh(counts)
        empty = cls(params, [], np.zeros(0))
        return empty, empty.transform(texts)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Rows of sublinear TF (times IDF), L2-normalised."""
        if self._counter is None:
            return sparse.csr_matrix((len(texts), 0))
        return self._weigh(self._counter.transform(texts))

    def _weigh(self, counts: sparse.spmatrix) -> sparse.csr_matrix:
        out = sparse.csr_matrix(counts, dtype=np.float64, copy=True)
        out.data = 1.0 + np.log(out.data)
        if self.idf.size:
            out = out @ sparse.diags(self.idf)
        return sparse.csr_matrix(normalize(out, norm="l2", copy=False))

    def state(self) -> dict[str, np.ndarray]:
        """The vocabulary (unicode array) and IDF."""
        return {"terms": np.asarray(self.terms, dtype=np.str_), "idf": self.idf}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> TextVectorizer:
        """Rebuild from :meth:`state`."""
        terms = [str(t) for t in arrays.get("terms", np.zeros(0, dtype=np.str_)).tolist()]
        return cls(params, terms, np.asarray(arrays.get("idf", np.zeros(0)), dtype=np.float64))
