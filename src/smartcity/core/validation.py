"""Input checked against a pydantic model, refused with one readable BadRequestData."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from smartcity.core.ngsild.errors import BadRequestData

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], item: Any, where: str) -> M:
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}"
                             for e in exc.errors())
        raise BadRequestData(f"Invalid {where}: {problems}") from None
