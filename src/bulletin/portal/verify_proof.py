"""Check a record proof downloaded from the public archive portal, with Python's standard
library alone (copy this one file anywhere): ``python3 verify_proof.py proof.json`` or, where
Bulletin is installed, ``python -m bulletin.portal.verify_proof proof.json``.

It checks that the snapshot's bytes hash to the sha256 the record's ledger entry names, that
every ledger entry's hash is the sha256 of its canonical JSON and names the one before it, and
that the last entry is the head the checkpoint recorded. Exit 0 and ``OK …`` when it all holds;
exit 1 and one line per problem otherwise; exit 2 when the file cannot be read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
from typing import Any

FORMAT = "bulletin-record-proof/1"
ENTRY_FIELDS = ("seq", "prev_hash", "kind", "record_id", "object_sha256", "recorded_at")


def canonical(value: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of a flat object with ASCII keys and no floats (a ledger entry, a
    checkpoint): sorted keys, no spaces, text as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def problems(proof: dict[str, Any]) -> list[str]:
    """What does not hold in ``proof`` (empty: it verifies)."""
    found: list[str] = []
    if proof.get("format") != FORMAT:
        return [f"not a record proof (format {proof.get('format')!r}, expected {FORMAT})"]
    record = proof.get("record") or {}
    try:
        snapshot = base64.b64decode(proof["snapshot"]["base64"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        return ["the snapshot's bytes are missing or not base64"]
    digest = hashlib.sha256(snapshot).hexdigest()
    if digest != proof["snapshot"].get("sha256"):
        found.append(f"the snapshot's bytes hash to {digest}, not the sha256 the proof states")
    chain = proof.get("ledger") or []
    if not chain:
        return [*found, "the proof has no ledger entries"]
    first = chain[0]
    if first.get("seq") != record.get("ledger_seq") or first.get("record_id") != record.get("id"):
        found.append("the first ledger entry is not the record's")
    if first.get("object_sha256") != digest:
        found.append(f"ledger entry {first.get('seq')} names another object than the snapshot")
    before: dict[str, Any] | None = None
    for entry in chain:
        body = {name: entry.get(name) for name in ENTRY_FIELDS}
        if hashlib.sha256(canonical(body)).hexdigest() != entry.get("entry_hash"):
            found.append(f"ledger entry {entry.get('seq')}'s hash does not match its content")
        if before is not None and (
            entry.get("prev_hash") != before.get("entry_hash")
            or entry.get("seq") != before.get("seq", 0) + 1
        ):
            found.append(f"ledger entry {entry.get('seq')} does not follow the one before it")
        before = entry
    checkpoint = proof.get("checkpoint")
    if checkpoint:
        try:
            point = json.loads(base64.b64decode(checkpoint["base64"], validate=True))
            head_seq, head_hash = point["head_seq"], point["head_hash"]
        except (KeyError, TypeError, ValueError, binascii.Error):
            return [*found, "the checkpoint cannot be read"]
        if head_seq != chain[-1].get("seq") or head_hash != chain[-1].get("entry_hash"):
            found.append(f"the chain does not end at the head checkpoint {head_seq} recorded")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 verify_proof.py PROOF.json", file=sys.stderr)
        return 2
    try:
        with open(args[0], "rb") as handle:
            proof = json.load(handle)
    except (OSError, ValueError) as e:
        print(f"cannot read {args[0]}: {e}", file=sys.stderr)
        return 2
    if not isinstance(proof, dict):
        print(f"{args[0]} is not a record proof", file=sys.stderr)
        return 2
    found = problems(proof)
    for line in found:
        print(f"FAILED: {line}")
    if found:
        return 1
    record = proof["record"]
    last = proof["ledger"][-1]["seq"]
    anchor = (
        f"checkpoint {proof['checkpoint']['key']}"
        if proof.get("checkpoint")
        else f"ledger entry {last} (no checkpoint yet)"
    )
    print(
        f"OK record {record['id']} ({record['kind']} {record['remote_id']} on "
        f"{record['account']}): snapshot sha256 {proof['snapshot']['sha256']}, ledger entries "
        f"{record['ledger_seq']}..{last}, chained to {anchor}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
