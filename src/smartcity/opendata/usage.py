"""How often each dataset is downloaded, per distribution: counted in memory by each
worker and added to the store's totals every few seconds (one record per dataset), so
that counting never slows a download."""

from __future__ import annotations

from collections import Counter

from smartcity.core.ngsild.storage import EntityStore
from smartcity.core.periodic import Periodic, in_turn

USAGE = "opendata-usage"
FLUSH_EVERY = 5.0


class Usage:
    def __init__(self, store: EntityStore) -> None:
        self.store = store
        self._pending: dict[str, Counter[str]] = {}
        self._totals: dict[str, dict[str, int]] = {}
        self._flushing = Periodic(self.flush, FLUSH_EVERY,
                                  "download counts could not be saved; trying again")

    def count(self, dataset_id: str, distribution: str) -> None:
        self._pending.setdefault(dataset_id, Counter())[distribution] += 1

    def of(self, dataset_id: str) -> dict[str, int]:
        """Downloads of a dataset per distribution: the stored totals and what this
        worker has counted since."""
        totals = Counter(self._totals.get(dataset_id, {}))
        totals.update(self._pending.get(dataset_id, Counter()))
        return dict(sorted(totals.items()))

    async def load(self) -> None:
        self._totals = {r["dataset"]: r["counts"] for r in await self.store.records(USAGE)}

    async def flush(self, patience: float = 0) -> None:
        """Add this worker's counts to the stored totals (one worker at a time, waiting
        up to ``patience`` seconds for the turn)."""
        pending, self._pending = self._pending, {}
        if not pending:
            await self.load()
            return
        await in_turn(self.store, USAGE, lambda: self._add(pending),
                      lambda: self._keep(pending), patience)

    async def _add(self, pending: dict[str, Counter[str]]) -> None:
        """Each dataset's counts leave ``pending`` once stored: should a later one fail,
        only the counts not yet stored are kept for the next time."""
        await self.load()
        for dataset_id in list(pending):
            total = Counter(self._totals.get(dataset_id, {}))
            total.update(pending[dataset_id])
            await self.store.save_record(USAGE, "", dataset_id, {
                "dataset": dataset_id, "counts": dict(total)})
            self._totals[dataset_id] = dict(total)
            del pending[dataset_id]

    def _keep(self, pending: dict[str, Counter[str]]) -> None:
        """Counts not yet stored wait for the next flush."""
        for dataset_id, counts in pending.items():
            self._pending.setdefault(dataset_id, Counter()).update(counts)

    def start(self) -> None:
        self._flushing.start()

    async def stop(self) -> None:
        await self._flushing.stop()
