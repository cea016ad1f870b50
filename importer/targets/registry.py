"""The import targets by name: field table, defaults for URL and key, and how to build one.

Everything that differs between vendors is here or in the target classes, so the
pipeline and the CLI never branch on a vendor:

    >>> TARGETS["devrev"].default_base_url
    'https://api.devrev.ai'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from importer.rows import contract, mapping, validate
from importer.rows.validate import RowMapper
from importer.targets import devrev_fields
from importer.targets.askelephant import AskElephantTarget, build_timeout
from importer.targets.base import Target
from importer.targets.devrev import DEFAULT_BASE_URL as DEVREV_BASE_URL
from importer.targets.devrev import DevRevTarget

TargetBuilder = Callable[[str, str, int, float], Target]
"""(base_url, api_key, concurrency, read_timeout) -> a target, its URL already checked."""


@dataclass(frozen=True)
class TargetKind:
    """One import target: what its create needs from a row, where it lives, its key."""

    name: str
    label: str
    """How messages name it (``AskElephant``, ``DevRev``)."""
    default_base_url: str
    base_url_env: str
    api_key_env: str
    fields: tuple[str, ...]
    """The mapping's field table: the fields a manifest column can feed."""
    required: tuple[str, ...]
    row_mapper: RowMapper
    build: TargetBuilder


def _builder(target_class: Callable[..., Target]) -> TargetBuilder:
    """Build ``target_class`` from the four settings every target takes."""

    def build(base_url: str, api_key: str, concurrency: int, read_timeout: float) -> Target:
        return target_class(
            base_url,
            api_key,
            timeout=build_timeout(read_timeout),
            max_connections=max(concurrency, 1),
        )

    return build


TARGETS: dict[str, TargetKind] = {
    "askelephant": TargetKind(
        name="askelephant",
        label="AskElephant",
        default_base_url=contract.PRODUCTION_BASE_URL,
        base_url_env="ASKELEPHANT_BASE_URL",
        api_key_env="ASKELEPHANT_API_KEY",
        fields=mapping.FIELDS,
        required=mapping.REQUIRED_FIELDS,
        row_mapper=validate.map_row,
        build=_builder(AskElephantTarget),
    ),
    "devrev": TargetKind(
        name="devrev",
        label="DevRev",
        default_base_url=DEVREV_BASE_URL,
        base_url_env="DEVREV_BASE_URL",
        api_key_env="DEVREV_API_KEY",
        fields=devrev_fields.FIELDS,
        required=devrev_fields.REQUIRED_FIELDS,
        row_mapper=devrev_fields.map_row,
        build=_builder(DevRevTarget),
    ),
}
DEFAULT_TARGET = "askelephant"


def target_kind(name: str) -> TargetKind:
    """The target called ``name`` (the CLI's choice list guarantees it exists)."""
    return TARGETS[name]
