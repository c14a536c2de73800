"""Language access: a notice in several languages, each a variant with its own text, its own
wording per account or platform, and its own alt text per image; the first is the primary.

Where the variants live: the primary's text, wording and alt texts are the notice's own
columns (``Notice.text``, ``Notice.variants``, ``Notice.images``) with its tag in
``Notice.lang``; every other variant is a :class:`~bulletin.models.NoticeLanguage` row.
Tags are BCP 47, in their standard form, from ``[agency] languages`` (the first is every
notice's primary unless the notice names another).

Which accounts post which variants (``[accounts.NAME] languages``): ``["*"]`` (the default)
posts every variant of a notice, a post per language, the others as replies to the primary's
post (``language_posts = "reply"``) or as posts of their own (``"separate"``); a list of tags
posts only those (one account per language). Each post is a delivery per (variant, account):
exactly once holds per (variant, account).

Published together (the default; ``publish_partial`` at approval lifts it): one approval
covers every variant (it names them); every variant's posts are due at the same instant; a
post of another variant waits until the primary's posts of the same occurrence are
published (on an account posting every language, it then replies to the primary's post
there); before any variant's post goes out the content policy runs again on every variant,
and a variant that is blocked stops all of them. A variant whose post fails for good stops
the posts of the other variants that are not out yet (they fail, naming it); a post already
out stays (retract it). With ``publish_partial`` a failed or blocked variant stops only its
own posts, and a reply whose primary post failed goes out as a post of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from bulletin.config.settings import Settings
from bulletin.config.values import language_tag
from bulletin.errors import UsageError, about
from bulletin.models import Notice, NoticeLanguage
from bulletin.publisher.texts import check_text


@dataclass(frozen=True)
class LanguageVariant:
    """One language of a notice: its tag, text, wording per account or platform, alt text
    per image (in the notice's image order; empty: the primary's) and follow-up at expiry
    (None: none in this language)."""

    lang: str
    text: str
    wording: Mapping[str, str] = field(default_factory=dict)
    alts: Sequence[str] = ()
    follow_up: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "lang": self.lang,
            "text": self.text,
            "wording": dict(self.wording),
            "alts": list(self.alts),
            "follow_up": self.follow_up,
        }


def normalise(settings: Settings, tag: str) -> str:
    """``tag`` in its standard form, one of ``[agency] languages``.

    :raises UsageError: not a language tag, or not one of the agency's languages.
    """
    try:
        standard = language_tag(tag)
    except ValueError as e:
        raise UsageError(str(e)) from None
    known = settings.agency.languages
    if standard not in known:
        raise UsageError(
            f"language {standard} is not one of the agency's languages ({', '.join(known)}; "
            "[agency] languages)"
        )
    return standard


def primary_of(settings: Settings, lang: str | None) -> str:
    """A draft's primary language: ``lang`` (checked), else the agency's first."""
    return normalise(settings, lang) if lang else settings.agency.languages[0]


def check_variants(
    settings: Settings,
    primary: str,
    others: Sequence[LanguageVariant],
    images: int,
    limit: int,
) -> list[LanguageVariant]:
    """The other variants of a draft whose primary is ``primary``, checked and stripped.

    :raises UsageError: a tag that is not the agency's or is named twice, an empty text, a
        text too long or with a character no platform shows, or alt texts that do not match
        the images one for one; its ``field`` is ``("languages", N, ATTRIBUTE...)``, N the
        variant's place in ``others``.
    """
    seen = {primary}
    checked = []
    for n, variant in enumerate(others):
        with about("languages", n, "lang"):
            lang = normalise(settings, variant.lang)
            if lang in seen:
                raise UsageError(f"language {lang} is given twice")
        seen.add(lang)
        checked.append(_check_variant(variant, lang, n, images, limit))
    return checked


def _check_variant(
    variant: LanguageVariant, lang: str, n: int, images: int, limit: int
) -> LanguageVariant:
    """One other variant (tag ``lang``, ``n``th of the draft's), checked and stripped."""
    text = variant.text.strip()
    with about("languages", n, "text"):
        if not text:
            raise UsageError(f"the {lang} text is empty")
        if len(text) > limit:
            raise UsageError(
                f"the {lang} text is {len(text)} characters, at most {limit} are allowed"
            )
        check_text(f"the {lang} text", text)
    for key, wording in variant.wording.items():
        with about("languages", n, "wording", key):
            check_text(f"the {lang} text for {key}", wording)
    with about("languages", n, "alts"):
        if variant.alts and len(variant.alts) != images:
            raise UsageError(
                f"the {lang} alt texts: {len(variant.alts)} given for {images} image(s)"
            )
    for m, alt in enumerate(variant.alts):
        with about("languages", n, "alts", m):
            if not alt.strip():
                raise UsageError(f"an {lang} alt text is empty")
            check_text(f"the {lang} alt text", alt)
    follow_up = variant.follow_up.strip() if variant.follow_up is not None else None
    with about("languages", n, "follow_up"):
        if follow_up is not None:
            if not follow_up:
                raise UsageError(f"the {lang} follow-up is empty")
            check_text(f"the {lang} follow-up", follow_up)
    return LanguageVariant(
        lang,
        text,
        {k: v.strip() for k, v in variant.wording.items()},
        [a.strip() for a in variant.alts],
        follow_up,
    )


def account_languages(settings: Settings, account: str, langs: Sequence[str]) -> list[str]:
    """Which of a notice's languages ``langs`` (the primary first) ``account`` posts."""
    configured = settings.accounts.get(account)
    wanted = configured.languages if configured is not None else ["*"]
    if wanted == ["*"]:
        return list(langs)
    return [lang for lang in langs if lang in wanted]


def replies_in(settings: Settings, account: str) -> bool:
    """Whether ``account`` posts the other languages as replies to the primary's post."""
    configured = settings.accounts.get(account)
    return configured is None or configured.language_posts == "reply"


def store_variants(session: Session, notice_id: int, others: Sequence[LanguageVariant]) -> None:
    """Add the rows of a notice's other variants (in order after the primary)."""
    for position, variant in enumerate(others, start=1):
        session.add(
            NoticeLanguage(
                notice_id=notice_id,
                lang=variant.lang,
                position=position,
                text=variant.text,
                wording=dict(variant.wording) or None,
                alts=list(variant.alts) or None,
                follow_up=variant.follow_up,
            )
        )


def variants_of(session: Session, notice: Notice) -> list[LanguageVariant]:
    """Every variant of ``notice``, the primary first."""
    primary = LanguageVariant(
        notice.lang,
        notice.text,
        dict(notice.variants or {}),
        [str(i.get("alt", "")) for i in notice.images or []],
        notice.follow_up,
    )
    rows = session.exec(
        select(NoticeLanguage)
        .where(NoticeLanguage.notice_id == notice.id)
        .order_by(col(NoticeLanguage.position))
    ).all()
    return [
        primary,
        *(
            LanguageVariant(r.lang, r.text, dict(r.wording or {}), list(r.alts or []), r.follow_up)
            for r in rows
        ),
    ]


def languages_of(session: Session, notice: Notice) -> list[str]:
    """The tags of ``notice``'s variants, the primary first."""
    rows = session.exec(
        select(NoticeLanguage.lang)
        .where(NoticeLanguage.notice_id == notice.id)
        .order_by(col(NoticeLanguage.position))
    ).all()
    return [notice.lang, *rows]


def display_name(tag: str, in_lang: str | None = None) -> str:
    """The language's name (in ``in_lang``, else in itself), from Babel; the tag when Babel
    does not know it."""
    from babel import Locale, UnknownLocaleError

    try:
        locale = Locale.parse(tag, sep="-")
        name = locale.get_display_name(in_lang.replace("-", "_") if in_lang else None)
    except (UnknownLocaleError, ValueError):
        return tag
    return name or tag


# The words a reply opens with, per language; a language not here is written with the
# English word (a marker people recognise), and its writer may open the text with their own.
CORRECTION_WORDS: Mapping[str, str] = {
    "en": "Correction: ",
    "es": "Corrección: ",
    "fr": "Correction : ",
    "pt": "Correção: ",
    "vi": "Đính chính: ",
    "zh-Hans": "更正\uff1a",  # \uff1a: a full-width colon
}
UPDATE_WORDS: Mapping[str, str] = {
    "en": "UPDATE: ",
    "es": "ACTUALIZACIÓN: ",
    "fr": "MISE À JOUR : ",
    "pt": "ATUALIZAÇÃO: ",
    "vi": "CẬP NHẬT: ",
    "zh-Hans": "更新\uff1a",
}

# a CAP alert's area and sender as its text names them, in the alert's language
AREA_WORDS: Mapping[str, str] = {
    "en": "Area: ",
    "es": "Zona: ",
    "fr": "Zone : ",
    "pt": "Área: ",
    "vi": "Khu vực: ",
    "zh": "地区\uff1a",
    "zh-Hans": "地区\uff1a",
}
ISSUED_BY_WORDS: Mapping[str, str] = {
    "en": "Issued by {sender}",
    "es": "Emitido por {sender}",
    "fr": "Émis par {sender}",
    "pt": "Emitido por {sender}",
    "vi": "Ban hành bởi {sender}",
    "zh": "发布机构\uff1a{sender}",
    "zh-Hans": "发布机构\uff1a{sender}",
}
# the reply a retraction posts when it is given no text of its own
RETRACTION_WORDS: Mapping[str, str] = {
    "en": "This notice has been withdrawn.",
    "es": "Este aviso ha sido retirado.",
    "fr": "Cet avis a été retiré.",
    "pt": "Este aviso foi retirado.",
    "vi": "Thông báo này đã được thu hồi.",
    "zh-Hans": "此通知已撤回。",
}


def word_in(words: Mapping[str, str], lang: str) -> str:
    """``words``' entry for ``lang`` (else for its base language, ``es`` for ``es-MX``),
    else the English one."""
    return words.get(lang) or words.get(lang.split("-")[0]) or words["en"]
