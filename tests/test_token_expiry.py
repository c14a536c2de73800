"""The administrators are warned before a platform account's token expires: once 14 days
before its ``token_expires`` day (agency zone), once more 3 days before, never twice for the
same stage; an account without the key, or disabled, is never warned."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bulletin.notify.outbox import Notification
from bulletin.notify.token_expiry import warn_expiring
from tests.plugins.bulletin_app import Instance, make_instance

PAGES = """
[accounts.fbpage]
platform = "facebook"
page_id = "1234567890"
token_env = "PD_FB_TOKEN"
token_expires = 2026-12-10

[accounts.oldpage]
platform = "facebook"
page_id = "1234567891"
token_env = "PD_FB_TOKEN"
token_expires = 2026-12-01
enabled = false
"""


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    inst = make_instance(tmp_path, db_url, PAGES)
    yield inst
    inst.app.close()


def warnings(inst: Instance) -> list[str]:
    with Session(inst.app.engine) as session:
        rows = session.exec(
            select(Notification).where(Notification.kind == "admin").order_by(col(Notification.id))
        ).all()
    return [r.subject for r in rows]


def test_a_token_is_warned_of_14_and_3_days_before_it_expires(site: Instance) -> None:
    """From 25 November 15:00 UTC, 10 December 00:00 EST is 14.6 days away: not yet; a day
    later, the first warning (once); 3 days before, the last; the disabled account never."""
    app, clock = site.app, site.clock
    assert warn_expiring(app.engine, app.settings, clock.now()) == []
    clock.advance(timedelta(days=1))
    assert warn_expiring(app.engine, app.settings, clock.now()) == ["fbpage"]
    assert warn_expiring(app.engine, app.settings, clock.now()) == []
    clock.advance(timedelta(days=10))
    assert warn_expiring(app.engine, app.settings, clock.now()) == []
    clock.advance(timedelta(days=1))
    assert warn_expiring(app.engine, app.settings, clock.now()) == ["fbpage"]
    clock.advance(timedelta(days=1))
    assert warn_expiring(app.engine, app.settings, clock.now()) == []
    assert warnings(site) == ["The token of fbpage expires on 2026-12-10"] * 2
