"""The catalogue of open datasets: kept in the store as records and in memory (every
worker sees another's change at its next request), refusing any dataset whose
publication policy would let personal data out."""

from __future__ import annotations

from collections.abc import Callable

from smartcity.core.ngsild.errors import BadRequestData, ResourceNotFound
from smartcity.core.ngsild.query_language import linked_attribute_names, parse_q
from smartcity.core.ngsild.storage import EntityStore
from smartcity.opendata.model import Dataset, DatasetSpec
from smartcity.security.policy import Register, matches

DATASETS = "opendata-dataset"


def check_not_personal(spec: DatasetSpec, register: Register) -> None:
    """BadRequestData when the dataset would publish, or select its entities by, an
    attribute the register of personal data names for one of its types (or a type that
    is personal through and through): which entities a dataset holds would tell what
    its query reads."""
    try:
        q = parse_q(spec.query.q) if spec.query.q else None
    except BadRequestData as exc:
        raise BadRequestData(f"The dataset's q is not valid: {exc.detail}") from None
    if q is not None and linked_attribute_names(q):
        raise BadRequestData("A dataset's q cannot read linked entities")
    read = set(q.attribute_names()) if q is not None else set()
    # An entity may have types besides the dataset's: q must read no attribute that is
    # personal in any type the register names.
    for view in (register.of([entry.type]) for entry in register.entries):
        filtered = sorted(a for a in read if view.attrs is None or matches(view.attrs, a))
        if filtered:
            raise BadRequestData(f"The dataset's q reads {', '.join(filtered)}, which is "
                                 "personal data")
    for type_name in spec.query.types:
        personal = register.of([type_name]).attrs
        if personal is None:
            raise BadRequestData(f"{type_name} entities are personal data through and "
                                 "through: they cannot be published")
        if not personal:
            continue
        leaked = sorted(a for a in spec.policy.attributes if matches(personal, a))
        if leaked:
            raise BadRequestData(f"{', '.join(leaked)} of {type_name} is personal data "
                                 "and is never published")


class Catalogue:
    kinds = (DATASETS,)

    def __init__(self, store: EntityStore, register: Register, now: Callable[[], str]
                 ) -> None:
        self.store = store
        self.register = register
        self.now = now
        self.versions: dict[str, int] = {}
        self._datasets: dict[str, Dataset] = {}

    async def reload(self) -> None:
        versions = await self.store.cache_versions()
        self.versions = {DATASETS: versions.get(DATASETS, 0)}
        self._datasets = {r["id"]: Dataset.model_validate(r)
                          for r in await self.store.records(DATASETS)}

    def datasets(self) -> list[Dataset]:
        return [self._datasets[k] for k in sorted(self._datasets)]

    def find(self, dataset_id: str) -> Dataset | None:
        return self._datasets.get(dataset_id)

    def get(self, dataset_id: str) -> Dataset:
        found = self._datasets.get(dataset_id)
        if found is None:
            raise ResourceNotFound(f"No dataset {dataset_id!r} in the catalogue")
        return found

    async def put(self, spec: DatasetSpec) -> tuple[Dataset, bool]:
        """Publish a dataset, or change one; whether it is new."""
        check_not_personal(spec, self.register)
        now = self.now()
        known = self._datasets.get(spec.id)
        dataset = Dataset(**spec.model_dump(), issued=known.issued if known else now,
                          modified=now)
        self.versions[DATASETS] = await self.store.save_record(
            DATASETS, "", spec.id, dataset.model_dump(mode="json"))
        self._datasets[spec.id] = dataset
        return dataset, known is None

    async def remove(self, dataset_id: str) -> None:
        self.get(dataset_id)
        _, self.versions[DATASETS] = await self.store.delete_record(DATASETS, "", dataset_id)
        del self._datasets[dataset_id]
