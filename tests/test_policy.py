"""Content-policy rules: each caught in plain and tricky wording, and passed in look-alike
wording that is allowed (false positives)."""

from __future__ import annotations

import pytest

from bulletin.config.settings import Settings
from bulletin.publisher import policy
from bulletin.publisher.texts import plan

SETTINGS = Settings.model_validate({"agency": {"website": "https://lexingtonma.gov/police"}})


def findings(
    text: str,
    category: str = "general",
    link: str | None = None,
    images: list[dict[str, str]] | None = None,
    platform: str = "feed",
) -> list[str]:
    target = plan(SETTINGS, platform, platform, text, link, allow_thread=False)
    subject = policy.Subject(category, [target], link, images or [])
    return [f.rule for f in policy.check(SETTINGS, subject)]


CAUGHT = [
    # guilt, innocence, pending prosecutions
    ("guilt-or-prosecution", "plain", "The man arrested Tuesday is guilty of the break-ins."),
    ("guilt-or-prosecution", "plain", "The suspect committed three burglaries on Elm St."),
    ("guilt-or-prosecution", "plain", "He will be convicted, make no mistake."),
    ("guilt-or-prosecution", "plain", "The defendant pleaded not guilty at arraignment."),
    ("guilt-or-prosecution", "tricky", "Smith was charged with OUI and is clearly responsible."),
    ("guilt-or-prosecution", "tricky", "We have an airtight case against the driver."),
    (
        "guilt-or-prosecution",
        "tricky",
        "The 34-year-old suspect, we believe, carried out the theft.",
    ),
    ("guilt-or-prosecution", "tricky", "The driver was INNOCENT and the other party at fault."),
    ("guilt-or-prosecution", "tricky", "Officers say the guilty man fled on foot."),
    # personal data
    ("personal-data", "plain", "Missing: Jane Doe, DOB 04/12/1944, last seen at noon."),
    ("personal-data", "plain", "Found wallet with SSN 123-45-6789; call to claim."),
    ("personal-data", "plain", "Driver's license S12345678 was recovered."),
    ("personal-data", "tricky", "Jane Doe (date of birth: March 3, 1961) is safe."),
    ("personal-data", "tricky", "Social security no. 123 45 6789 was found."),
    ("personal-data", "tricky", "The victim, who lives alone, was attacked at 12 Elm Street."),
    ("personal-data", "tricky", "She resides at 40 Bedford St near the common."),
    ("plate-number", "plain", "Vehicle towed, plate 1ABC23, owner notified."),
    ("plate-number", "tricky", "Registration # 7XY-442 was seen leaving."),
    # profanity
    ("profanity", "plain", "This is bullshit parking."),
    ("profanity", "tricky", "SHIT happens, drive safely."),
    ("profanity", "tricky", "Don't be a f*** idiot on the road."),
    ("profanity", "tricky", "Stop the damned speeding."),
]

PASSED = [
    ("guilt-or-prosecution", "Guilty plea hearing Tuesday at Concord District Court."),
    ("guilt-or-prosecution", "An innocent bystander was treated for minor injuries."),
    ("guilt-or-prosecution", "All defendants are presumed innocent until proven guilty."),
    ("guilt-or-prosecution", "A 34-year-old Boston man was arrested and charged with OUI."),
    ("guilt-or-prosecution", "The family pleaded for help finding their dog."),
    ("guilt-or-prosecution", "Arraignment is scheduled for Monday."),
    ("personal-data", "Call 781-862-1212 with any information."),
    ("personal-data", "Case 2026-11-0042: road reopened at 6 pm."),
    ("personal-data", "Mass Ave closed between Waltham St and Muzzey St until 6 pm."),
    ("personal-data", "Fire at 12 Elm Street; residents evacuated safely."),
    ("personal-data", "License renewals at the RMV are by appointment."),
    ("plate-number", "Our licence plate reader program is reviewed yearly."),
    ("profanity", "Road race from Scunthorpe Way to Essex St on Sunday."),
    ("profanity", "Scrap metal thefts are up; lock your shed."),
    ("profanity", "The Dickens Fair is on Saturday; expect traffic at the Assembly Hall."),
]


@pytest.mark.parametrize(
    ("rule", "kind", "text"), CAUGHT, ids=[f"{r}-{k}-{i}" for i, (r, k, _) in enumerate(CAUGHT)]
)
def test_rule_catches(rule: str, kind: str, text: str) -> None:
    """Plain and tricky wording that breaks the department's policy is caught by its rule."""
    assert rule in findings(text)


@pytest.mark.parametrize(
    ("rule", "text"), PASSED, ids=[f"{r}-{i}" for i, (r, _) in enumerate(PASSED)]
)
def test_rule_passes_lookalikes(rule: str, text: str) -> None:
    """Look-alike wording that the policy allows passes (no false positive)."""
    assert rule not in findings(text)


def test_plate_number_is_allowed_in_missing_person_notices() -> None:
    """A missing person's vehicle plate is what the public looks for: the rule skips it."""
    text = "Missing: John Roe, 81, driving a blue Camry, plate 1ABC23."
    assert "plate-number" in findings(text, "general")
    assert "plate-number" not in findings(text, "missing-person")


@pytest.mark.parametrize(
    ("link", "text", "caught"),
    [
        (None, "We are hiring officers.", True),
        ("https://example.com/jobs", "We are hiring officers.", True),
        ("https://www.lexingtonma.gov/police/jobs", "We are hiring officers.", False),
        (None, "We are hiring: https://lexingtonma.gov/police/jobs", False),
    ],
)
def test_link_required(link: str | None, text: str, caught: bool) -> None:
    """Recruitment links to the department's own site, as --link or in the text."""
    assert ("link-required" in findings(text, "recruitment", link)) is caught
    assert "link-required" not in findings(text, "general", link)


@pytest.mark.parametrize(
    ("images", "caught"),
    [
        ([{"path": "a.png", "alt": ""}], True),
        ([{"path": "a.png", "alt": "   "}], True),
        ([{"path": "a.png", "alt": "Map of the detour"}], False),
        ([], False),
    ],
)
def test_alt_text(images: list[dict[str, str]], caught: bool) -> None:
    """Every image needs alt text."""
    assert ("alt-text" in findings("Detour map.", images=images)) is caught


def test_over_length_counts_weighted_length() -> None:
    """Over-length is judged as X counts: emoji weigh 2, so 150 of them break 280."""
    assert "over-length" in findings("🚧" * 150, platform="x")
    assert "over-length" not in findings("a" * 280, platform="x")


def test_rules_come_from_configuration() -> None:
    """A configured word list replaces the shipped one; a rule can be disabled."""
    settings = Settings.model_validate(
        {
            "policy": {
                "disabled": ["guilt-or-prosecution"],
                "rules": [
                    {
                        "id": "profanity",
                        "kind": "words",
                        "words": ["heck"],
                        "message": "keep it clean",
                        "severity": "warn",
                    }
                ],
            }
        }
    )
    target = plan(settings, "feed", "feed", "What the heck: the suspect is guilty.", None, False)
    found = policy.check(settings, policy.Subject("general", [target]))
    assert [(f.rule, f.severity, f.excerpt) for f in found] == [("profanity", "warn", "heck")]
    assert policy.blocking(found) == []
