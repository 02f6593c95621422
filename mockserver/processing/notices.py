"""Events the pipeline publishes about an account, beside its own file events."""

from __future__ import annotations

from mockserver.events import AccountChanged, EventBus
from mockserver.store import FileRecord, Store


def announce_charge(store: Store, bus: EventBus, record: FileRecord | None) -> None:
    """Contract 9.1 `account.changed`, "credits included": a file that debited credits
    changed its account (`change` "charged", its credits after the debit). A subscription's
    files debit nothing: no event."""
    if record is None or not record.debited:
        return
    account = store.account(record.login)
    if account is not None:
        bus.publish(AccountChanged(login=record.login, change="charged", credits=account.credits))
