"""The knowledge base's rules as the learned layer's evidence per label."""

from __future__ import annotations

import numpy as np

from voc.kb_models import ServiceMatrix, Taxonomy
from voc.learning.features import RuleGroups
from voc.models import Business

ALL_BUSINESSES = {b.value for b in Business}


def owner_rules(matrix: ServiceMatrix, entry_vectors: np.ndarray) -> RuleGroups:
    """Per department: its entries' keywords, the businesses they serve, and each entry's vector
    (scene, keywords and description; never the example utterances the model is trained on)."""
    owners = matrix.department_names()
    keywords: list[list[str]] = [[] for _ in owners]
    served: list[set[str]] = [set() for _ in owners]
    for entry in matrix.entries:
        index = owners.index(entry.owner)
        keywords[index] += entry.keywords
        served[index] |= ALL_BUSINESSES if "*" in entry.business else {str(b) for b in entry.business}
    return RuleGroups(labels=owners, keywords=keywords, businesses=served, anchors=entry_vectors,
                      anchor_label=[owners.index(e.owner) for e in matrix.entries])


def tag_rules(taxonomy: Taxonomy, definition_vectors: np.ndarray) -> RuleGroups:
    """Per tag: the data dictionary's keywords and its definition's vector (not its examples)."""
    return RuleGroups(labels=[t.path for t in taxonomy.tags], keywords=[list(t.keywords) for t in taxonomy.tags],
                      anchors=definition_vectors, anchor_label=list(range(len(taxonomy.tags))))
