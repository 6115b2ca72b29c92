"""Specification of the entity stores (``EntityStore``): SQLite, and PostgreSQL with and
without PostGIS, held to the same behaviour."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from smartcity.core.ngsild.errors import AlreadyExists, Conflict, ResourceNotFound
from smartcity.core.ngsild.model import Entity
from smartcity.core.ngsild.pushdown import ValueFilter
from smartcity.core.ngsild.storage import EntityStore, OutboxEntry, Selection, Write
from smartcity.store.backend import open_store
from smartcity.store.postgres import PostgresStore
from smartcity.store.sqlite import SqliteStore
from tests.conftest import database

D = "https://uri.etsi.org/ngsi-ld/default-context/"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
LAMP, BENCH, DEVICE = D + "Streetlight", D + "Bench", D + "Device"
T0, T1 = "2024-01-01T00:00:00.000000Z", "2024-06-01T00:00:00.000000Z"


def entity(entity_id: str, *types: str, at: str = T0, point: list[float] | None = None,
           **values: Any) -> Entity:
    attrs: dict[str, Any] = {D + name: [{"type": "Property", "value": value,
                                         "createdAt": T0, "modifiedAt": at}]
                             for name, value in values.items()}
    if point is not None:
        attrs[LOCATION] = [{"type": "GeoProperty",
                            "value": {"type": "Point", "coordinates": point},
                            "createdAt": T0, "modifiedAt": at}]
    return {"id": entity_id, "type": list(types or (LAMP,)), "createdAt": T0,
            "modifiedAt": at, "attrs": attrs}


def insert(*entities: Entity) -> list[Write]:
    return [Write("insert", e["id"], e) for e in entities]


@pytest.fixture(params=["sqlite", "postgres", "postgres-without-postgis"])
async def store(request: pytest.FixtureRequest,
                tmp_path: Path) -> AsyncIterator[EntityStore]:
    with database(request.param.split("-")[0], tmp_path) as db:
        opened = await PostgresStore.open(db, postgis=False) \
            if request.param == "postgres-without-postgis" else await open_store(db)
        yield opened
        await opened.close()


async def ids(store: EntityStore, selection: Selection, tenant: str = "",
              **kwargs: Any) -> list[str]:
    page = await store.query(tenant, selection, kwargs.get("predicate"),
                             kwargs.get("offset", 0), kwargs.get("limit", 100), False)
    return [e["id"] for e in page.entities]


# --- writes -----------------------------------------------------------------------------


async def test_an_inserted_entity_reads_back_unchanged(store: EntityStore) -> None:
    lamp = entity("urn:x:1", LAMP, point=[18.07, 59.33], power="on",
                  address={"city": "Stockholm"})
    await store.write("", insert(lamp))
    assert await store.get("", "urn:x:1") == lamp
    assert await store.get("", "urn:x:2") is None


async def test_get_many_returns_the_entities_that_exist(store: EntityStore) -> None:
    await store.write("", insert(entity("urn:x:1"), entity("urn:x:2")))
    found = await store.get_many("", ["urn:x:2", "urn:x:3", "urn:x:1", "urn:x:2"])
    assert set(found) == {"urn:x:1", "urn:x:2"}


async def test_get_many_handles_more_ids_than_one_statement_takes(store: EntityStore) -> None:
    await store.write("", insert(*(entity(f"urn:x:{i}") for i in range(1200))))
    found = await store.get_many("", [f"urn:x:{i}" for i in range(0, 1300, 3)])
    assert len(found) == len(range(0, 1200, 3))


async def test_a_batch_with_an_existing_id_in_the_middle_writes_nothing(
        store: EntityStore) -> None:
    await store.write("", insert(entity("urn:x:2", power="on")))
    with pytest.raises(AlreadyExists):
        await store.write("", insert(entity("urn:x:1"), entity("urn:x:2", power="off"),
                                     entity("urn:x:3")))
    assert await store.get("", "urn:x:1") is None
    assert await store.get("", "urn:x:3") is None
    stored = await store.get("", "urn:x:2")
    assert stored is not None and stored["attrs"][D + "power"][0]["value"] == "on"
    page = await store.query("", Selection(types=(frozenset({LAMP}),)), None, 0, 10, True)
    assert page.total == 1


@pytest.mark.parametrize("op", ["replace", "delete"])
async def test_a_batch_touching_a_missing_entity_writes_nothing(store: EntityStore,
                                                                op: str) -> None:
    await store.write("", insert(entity("urn:x:1", power="on")))
    missing = entity("urn:x:9") if op == "replace" else None
    with pytest.raises(ResourceNotFound):
        await store.write("", [Write("replace", "urn:x:1", entity("urn:x:1", power="off")),
                               Write(op, "urn:x:9", missing)])  # type: ignore[arg-type]
    stored = await store.get("", "urn:x:1")
    assert stored is not None and stored["attrs"][D + "power"][0]["value"] == "on"


async def test_a_store_stays_usable_after_a_failed_write(store: EntityStore) -> None:
    await store.write("", insert(entity("urn:x:1")))
    with pytest.raises(AlreadyExists):
        await store.write("", insert(entity("urn:x:1")))
    await store.write("", insert(entity("urn:x:2")))
    assert await store.get("", "urn:x:2") is not None


async def test_a_replace_expecting_the_stored_version_succeeds(store: EntityStore) -> None:
    await store.write("", insert(entity("urn:x:1", power="on")))
    new = entity("urn:x:1", at=T1, power="off")
    await store.write("", [Write("replace", "urn:x:1", new, expect=T0)])
    assert await store.get("", "urn:x:1") == new


async def test_a_replace_expecting_an_older_version_is_a_conflict(store: EntityStore) -> None:
    await store.write("", insert(entity("urn:x:1", power="on")))
    await store.write("", [Write("replace", "urn:x:1", entity("urn:x:1", at=T1, power="dim"),
                                 expect=T0)])
    late = entity("urn:x:1", at="2024-07-01T00:00:00.000000Z", power="off")
    with pytest.raises(Conflict):
        await store.write("", [Write("replace", "urn:x:1", late, expect=T0)])
    stored = await store.get("", "urn:x:1")
    assert stored is not None and stored["attrs"][D + "power"][0]["value"] == "dim"


async def test_a_conflict_in_a_batch_writes_nothing(store: EntityStore) -> None:
    await store.write("", insert(entity("urn:x:1"), entity("urn:x:2", at=T1)))
    with pytest.raises(Conflict):
        await store.write("", [
            Write("replace", "urn:x:1", entity("urn:x:1", at=T1, power="off"), expect=T0),
            Write("replace", "urn:x:2", entity("urn:x:2", at=T1, power="off"), expect=T0)])
    stored = await store.get("", "urn:x:1")
    assert stored is not None and stored["modifiedAt"] == T0


async def test_writes_of_one_transaction_apply_in_order(store: EntityStore) -> None:
    first, second = entity("urn:x:1", power="on"), entity("urn:x:1", at=T1, power="off")
    await store.write("", [Write("insert", "urn:x:1", first),
                           Write("replace", "urn:x:1", second)])
    assert await store.get("", "urn:x:1") == second
    await store.write("", [Write("insert", "urn:x:2", entity("urn:x:2")),
                           Write("delete", "urn:x:2")])
    assert await store.get("", "urn:x:2") is None
    assert await ids(store, Selection(types=(frozenset({LAMP}),))) == ["urn:x:1"]


async def test_delete_removes_the_entity_from_reads_queries_and_counts(
        store: EntityStore) -> None:
    await store.write("", insert(entity("urn:x:1", point=[18.0, 59.0], power="on"),
                                 entity("urn:x:2", power="on")))
    await store.write("", [Write("delete", "urn:x:1")])
    assert await store.get("", "urn:x:1") is None
    assert await ids(store, Selection(types=(frozenset({LAMP}),))) == ["urn:x:2"]
    assert await ids(store, Selection(bbox=(LOCATION, (17.0, 58.0, 19.0, 60.0)))) == []
    assert await store.type_counts("") == {LAMP: 1}
    assert await store.attribute_counts("") == {D + "power": 1}


async def test_attribute_counts_can_be_kept_to_entities_of_some_types(
        store: EntityStore) -> None:
    await store.write("", insert(entity("urn:x:1", LAMP, power="on"),
                                 entity("urn:x:2", BENCH, power="off"),
                                 entity("urn:x:3", BENCH, LAMP, power="on")))
    assert await store.attribute_counts("", [D + "power"]) == {D + "power": 3}
    assert await store.attribute_counts("", [D + "power"], [LAMP]) == {D + "power": 2}
    assert await store.attribute_counts("", None, [BENCH]) == {D + "power": 2}
    assert await store.attribute_counts("", None, []) == {}


# --- tenants ----------------------------------------------------------------------------


async def test_tenants_are_kept_apart(store: EntityStore) -> None:
    await store.write("", insert(entity("urn:x:1", LAMP)))
    await store.write("north", insert(entity("urn:x:1", BENCH)))
    default, north = await store.get("", "urn:x:1"), await store.get("north", "urn:x:1")
    assert default is not None and default["type"] == [LAMP]
    assert north is not None and north["type"] == [BENCH]
    assert await ids(store, Selection(types=(frozenset({BENCH}),))) == []
    assert await ids(store, Selection(types=(frozenset({BENCH}),)), "north") == ["urn:x:1"]
    assert await store.type_counts("north") == {BENCH: 1}


async def test_geometry_and_value_selections_keep_to_the_tenant(store: EntityStore) -> None:
    await store.write("", insert(entity("urn:x:1", point=[18.07, 59.33], power="on")))
    await store.write("north", insert(entity("urn:x:2", point=[18.07, 59.33], power="on")))
    around = (LOCATION, (18.0, 59.3, 18.2, 59.4))
    power_on = (ValueFilter(D + "power", "in", "str", ("on",)),)
    assert await ids(store, Selection(bbox=around)) == ["urn:x:1"]
    assert await ids(store, Selection(bbox=around), "north") == ["urn:x:2"]
    assert await ids(store, Selection(values=power_on), "north") == ["urn:x:2"]
    assert await ids(store, Selection(ids=("urn:x:1", "urn:x:2"), values=power_on)) == [
        "urn:x:1"]


async def test_a_tenant_exists_once_something_was_created_in_it(store: EntityStore) -> None:
    assert not await store.has_tenant("north")
    await store.write("north", insert(entity("urn:x:1")))
    assert await store.has_tenant("north")
    assert "north" in await store.tenants()
    assert not await store.has_tenant("south")


# --- selections -------------------------------------------------------------------------


@pytest.fixture
async def city(store: EntityStore) -> EntityStore:
    await store.write("", insert(
        entity("urn:x:lamp", LAMP, point=[18.07, 59.33], power="on"),
        entity("urn:x:smart", LAMP, DEVICE, point=[18.10, 59.35], power="off", firmware=2),
        entity("urn:x:bench", BENCH, point=[17.00, 58.00], seats=4),
        entity("urn:x:meter", DEVICE, firmware=1)))
    return store


@pytest.mark.parametrize(("types", "expected"), [
    ((frozenset({LAMP}),), ["urn:x:lamp", "urn:x:smart"]),
    ((frozenset({LAMP, DEVICE}),), ["urn:x:smart"]),
    ((frozenset({BENCH}), frozenset({DEVICE})), ["urn:x:smart", "urn:x:bench", "urn:x:meter"]),
    ((frozenset({D + "Fountain"}),), []),
])
async def test_type_selection_is_a_disjunction_of_conjunctions(
        city: EntityStore, types: tuple[frozenset[str], ...], expected: list[str]) -> None:
    assert await ids(city, Selection(types=types)) == expected


async def test_id_selection(city: EntityStore) -> None:
    assert await ids(city, Selection(ids=("urn:x:meter", "urn:x:lamp", "urn:x:nope"))) == [
        "urn:x:lamp", "urn:x:meter"]


async def test_attribute_selection_keeps_entities_with_any_of_them(city: EntityStore) -> None:
    assert await ids(city, Selection(attrs=frozenset({D + "seats", D + "firmware"}))) == [
        "urn:x:smart", "urn:x:bench", "urn:x:meter"]


async def test_bounding_box_selection_uses_the_named_geoproperty(city: EntityStore) -> None:
    around = (LOCATION, (18.0, 59.3, 18.2, 59.4))
    assert await ids(city, Selection(bbox=around)) == ["urn:x:lamp", "urn:x:smart"]
    assert await ids(city, Selection(bbox=(D + "elsewhere", (-180.0, -90.0, 180.0, 90.0)))) \
        == []


async def test_a_moved_entity_is_found_at_its_new_place_only(city: EntityStore) -> None:
    moved = entity("urn:x:bench", BENCH, at=T1, point=[18.08, 59.34], seats=4)
    await city.write("", [Write("replace", "urn:x:bench", moved, expect=T0)])
    assert "urn:x:bench" in await ids(city, Selection(bbox=(LOCATION, (18.0, 59.3, 18.2,
                                                                       59.4))))
    assert await ids(city, Selection(bbox=(LOCATION, (16.9, 57.9, 17.1, 58.1)))) == []


async def test_a_retyped_entity_is_found_by_its_new_type_only(city: EntityStore) -> None:
    await city.write("", [Write("replace", "urn:x:meter",
                                entity("urn:x:meter", BENCH, at=T1, firmware=1), expect=T0)])
    assert "urn:x:meter" in await ids(city, Selection(types=(frozenset({BENCH}),)))
    assert "urn:x:meter" not in await ids(city, Selection(types=(frozenset({DEVICE}),)))


async def test_selections_combine(city: EntityStore) -> None:
    selection = Selection(types=(frozenset({DEVICE}),), attrs=frozenset({D + "power"}),
                          bbox=(LOCATION, (18.0, 59.3, 18.2, 59.4)))
    assert await ids(city, selection) == ["urn:x:smart"]


async def value_ids(store: EntityStore, attr: str, column: str, value: float | str
                    ) -> list[str]:
    return await ids(store, Selection(values=(ValueFilter(D + attr, "in", column, (value,)),)))


async def test_updating_one_value_moves_it_in_the_value_index_and_keeps_the_others(
        city: EntityStore) -> None:
    changed = entity("urn:x:smart", LAMP, DEVICE, at=T1, point=[18.10, 59.35], power="on",
                     firmware=2)
    await city.write("", [Write("replace", "urn:x:smart", changed, expect=T0)])
    assert await value_ids(city, "power", "str", "on") == ["urn:x:lamp", "urn:x:smart"]
    assert await value_ids(city, "power", "str", "off") == []
    assert await value_ids(city, "firmware", "num", 2) == ["urn:x:smart"]


async def test_values_written_by_an_earlier_version_are_all_rewritten_on_update(
        city: EntityStore) -> None:
    # Earlier versions kept one 12-byte digest of all indexed values.
    if isinstance(city, SqliteStore):
        city.db.execute("UPDATE entities SET values_sig = zeroblob(12)")
    else:
        assert isinstance(city, PostgresStore)
        async with city.pool.acquire() as conn:
            await conn.execute("UPDATE entities SET values_sig = '\\x00'::bytea")
    changed = entity("urn:x:smart", LAMP, DEVICE, at=T1, point=[18.10, 59.35], power="off",
                     firmware=3)
    await city.write("", [Write("replace", "urn:x:smart", changed, expect=T0)])
    assert await value_ids(city, "firmware", "num", 3) == ["urn:x:smart"]
    assert await value_ids(city, "power", "str", "off") == ["urn:x:smart"]


# --- predicate, pagination, count -------------------------------------------------------


@pytest.fixture
async def many(store: EntityStore) -> EntityStore:
    await store.write("", insert(*(entity(f"urn:x:{i:02d}", n=i) for i in range(30))))
    return store


def even(e: Entity) -> bool:
    return e["attrs"][D + "n"][0]["value"] % 2 == 0


async def test_pages_without_predicate_follow_insertion_order(many: EntityStore) -> None:
    page = await many.query("", Selection(), None, 10, 5, True)
    assert [e["id"] for e in page.entities] == [f"urn:x:{i}" for i in range(10, 15)]
    assert page.total == 30


async def test_the_predicate_filters_before_the_page_is_cut(many: EntityStore) -> None:
    page = await many.query("", Selection(), even, 3, 4, True)
    assert [e["id"] for e in page.entities] == ["urn:x:06", "urn:x:08", "urn:x:10", "urn:x:12"]
    assert page.total == 15


async def test_count_is_only_given_when_asked(many: EntityStore) -> None:
    assert (await many.query("", Selection(), even, 0, 2, False)).total is None
    assert (await many.query("", Selection(), None, 0, 2, False)).total is None


async def test_limit_zero_only_counts(many: EntityStore) -> None:
    page = await many.query("", Selection(), even, 0, 0, True)
    assert page.entities == [] and page.total == 15


async def test_an_offset_past_the_end_gives_an_empty_page(many: EntityStore) -> None:
    page = await many.query("", Selection(), even, 20, 5, True)
    assert page.entities == [] and page.total == 15


# --- durability -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_data_survives_reopening_the_store(backend: str, tmp_path: Path) -> None:
    with database(backend, tmp_path) as db:
        await reopen(db)


async def reopen(db: str) -> None:
    first = await open_store(db)
    lamp = entity("urn:x:1", LAMP, point=[18.07, 59.33], power="on")
    await first.write("north", insert(lamp))
    await first.save_context({"localId": "abc", "URL": "http://x/abc", "kind": "Hosted",
                              "document": {"@context": {}}})
    await first.close()
    second = await open_store(db)
    try:
        assert await second.get("north", "urn:x:1") == lamp
        assert await second.has_tenant("north")
        selection = Selection(types=(frozenset({LAMP}),),
                              bbox=(LOCATION, (18.0, 59.3, 18.2, 59.4)))
        assert await ids(second, selection, "north") == ["urn:x:1"]
        assert [r["localId"] for r in await second.contexts()] == ["abc"]
        await second.delete_context("abc")
        assert await second.contexts() == []
    finally:
        await second.close()


async def test_an_in_memory_store_works_without_a_file() -> None:
    memory = SqliteStore(":memory:")
    try:
        await memory.write("", insert(entity("urn:x:1")))
        assert await memory.get("", "urn:x:1") is not None
    finally:
        await memory.close()


# --- records of platform services ---------------------------------------------------------


async def test_records_are_kept_per_kind_and_tenant_and_move_the_kind_version(
        store: EntityStore) -> None:
    before = (await store.cache_versions()).get("iot-device", 0)
    assert await store.save_record("iot-device", "north", "sensor-1",
                                   {"device_id": "sensor-1"}) == before + 1
    await store.save_record("iot-device", "south", "sensor-1", {"device_id": "sensor-1",
                                                                "n": 2})
    await store.save_record("iot-group", "north", "key", {"apikey": "key"})
    assert sorted(r.get("n", 1) for r in await store.records("iot-device")) == [1, 2]
    await store.save_record("iot-device", "north", "sensor-1", {"device_id": "sensor-1",
                                                                "n": 3})
    assert sorted(r["n"] for r in await store.records("iot-device")) == [2, 3]
    assert await store.delete_record("iot-device", "north", "sensor-1") == (True, before + 4)
    assert await store.delete_record("iot-device", "north", "sensor-1") == (False, before + 5)
    assert [r["n"] for r in await store.records("iot-device")] == [2]
    assert (await store.cache_versions())["iot-device"] == before + 5


async def test_every_subscription_with_pending_notifications_is_found_behind_a_long_queue(
        store: EntityStore) -> None:
    """A dead endpoint's queue of hundreds must not hide the other subscriptions."""
    backlog = [OutboxEntry("", "urn:s:dead", b"{}") for _ in range(600)]
    await store.write("", insert(entity("urn:x:1")), backlog)
    await store.write("", insert(entity("urn:x:2")), [OutboxEntry("", "urn:s:alive", b"{}")])
    assert len(await store.pending_notifications(500)) == 500
    assert sorted(await store.pending_subscriptions(500)) == [("", "urn:s:alive"),
                                                               ("", "urn:s:dead")]
