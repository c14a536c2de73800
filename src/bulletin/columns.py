"""Column types that keep Python values typed while the database keeps plain text.

:class:`EnumText` stores a :class:`~enum.StrEnum` member as its value and reads it back as the
member; :class:`JSONText` stores a list or dict as JSON text and reads it back parsed. Both
write exactly the text that was written before them, so no migration is needed.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.types import Text, TypeDecorator
from sqlmodel import AutoString

E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E], Generic[E]):
    """A :class:`StrEnum` stored as its value. Writing a word that is not one of its values
    raises ``ValueError`` (a typo never reaches the database); reading gives the member."""

    impl = AutoString
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)

    @property
    def python_type(self) -> type[E]:
        return self.enum


class JSONText(TypeDecorator[Any]):
    """A list or dict stored as JSON text; ``None`` stays NULL. Non-ASCII is kept as is, or
    escaped (``\\u00e9``) with ``ensure_ascii=True`` for a column whose rows were always
    written that way."""

    impl = Text
    cache_ok = True

    def __init__(self, ensure_ascii: bool = False) -> None:
        super().__init__()
        self.ensure_ascii = ensure_ascii

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=self.ensure_ascii)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)
