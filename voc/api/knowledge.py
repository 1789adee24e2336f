"""The taxonomy and the service matrix, read-only."""

from __future__ import annotations

from fastapi import APIRouter

from voc.api.deps import ServicesDep
from voc.kb_models import ServiceMatrix, Taxonomy
from voc.knowledge import load_service_matrix, load_taxonomy

router = APIRouter(prefix="/api", tags=["knowledge"])


@router.get("/taxonomy")
def taxonomy(services: ServicesDep) -> Taxonomy:
    return load_taxonomy(services.settings.taxonomy_path)


@router.get("/service-matrix")
def service_matrix(services: ServicesDep) -> ServiceMatrix:
    return load_service_matrix(services.settings.service_matrix_path)
