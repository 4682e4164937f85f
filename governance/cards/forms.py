"""The section-by-section card form: text areas that people type into, parsed back into schema-shaped values."""

from __future__ import annotations

from typing import Any

from django import forms

from governance.cards.schema import SECTIONS

HELP = {
    "md": "Markdown; raw HTML is removed and links are sanitised when the card is shown.",
    "owners": "One per line: Name <contact>.",
    "lines": "One per line.",
    "measures": "One per line: metric | slice (empty = overall) | value | CI lower | CI upper.",
    "slices": "One per line: slice | metric | value | CI lower | CI upper.",
}


def _number(text: str, line: int) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise forms.ValidationError(f"Line {line}: {text!r} is not a number.")


def _rows(text: str, names: tuple[str, ...], numeric: set[str]) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")] + [""] * len(names)
        row: dict[str, Any] = {}
        for name, part in zip(names, parts, strict=False):
            row[name] = _number(part, number) if name in numeric else part
        if not row[names[0]] or (not row[names[1]] and names[1] != "slice"):
            raise forms.ValidationError(f"Line {number}: {names[0]} and {names[1]} are required.")
        rows.append(row)
    return rows


def _fmt(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def to_text(kind: str, value: Any) -> str:
    """Return a stored value as the text its form field shows."""
    if not value:
        return ""
    if kind == "owners":
        return "\n".join(o.get("name", "") + (f" <{o['contact']}>" if o.get("contact") else "") for o in value)
    if kind == "lines":
        return "\n".join(value)
    if kind == "measures":
        return "\n".join(" | ".join([m.get("name", ""), m.get("slice", ""), _fmt(m.get("value")),
                                     _fmt(m.get("ci_lower")), _fmt(m.get("ci_upper"))]) for m in value)
    if kind == "slices":
        return "\n".join(" | ".join([s.get("slice", ""), s.get("metric", ""), _fmt(s.get("value")),
                                     _fmt(s.get("ci_lower")), _fmt(s.get("ci_upper"))]) for s in value)
    return str(value)


def from_text(kind: str, text: str) -> Any:
    """Parse what a person typed into the value the schema expects."""
    text = (text or "").replace("\r\n", "\n")
    if kind == "owners":
        owners = []
        for line in filter(None, (raw.strip() for raw in text.splitlines())):
            name, _, rest = line.partition("<")
            owners.append({"name": name.strip() or rest.rstrip(">").strip(), "contact": rest.rstrip(">").strip()})
        return owners
    if kind == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if kind == "measures":
        return _rows(text, ("name", "slice", "value", "ci_lower", "ci_upper"), {"value", "ci_lower", "ci_upper"})
    if kind == "slices":
        return _rows(text, ("slice", "metric", "value", "ci_lower", "ci_upper"), {"value", "ci_lower", "ci_upper"})
    return text.strip() if kind == "text" else text


class CardSectionForm(forms.Form):
    """One section of a card: a field per human-editable entry, plus a change note."""

    note = forms.CharField(required=False, max_length=2000, label="Change note",
                           help_text="Goes into the card's change log (optional).")

    def __init__(self, *args: Any, section: str, content: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.section = next(s for s in SECTIONS if s["key"] == section)
        values = content.get(section, {})
        self.kinds: dict[str, str] = {}
        for key, label, kind in self.section["fields"]:
            self.kinds[key] = kind
            if kind == "text":
                field: forms.Field = forms.CharField(max_length=2000, required=False, label=label)
            else:
                rows = 8 if kind == "md" else 4
                attrs = {"rows": rows, **({"class": "mono", "spellcheck": "false"} if kind in HELP and kind != "md"
                                          else {})}
                field = forms.CharField(widget=forms.Textarea(attrs=attrs), max_length=20_000, required=False,
                                        label=label, strip=False)
            field.help_text = HELP.get(kind, "")
            field.initial = to_text(kind, values.get(key))
            self.fields[key] = field
        self.order_fields([*self.kinds, "note"])

    def clean(self) -> dict[str, Any]:
        """Parse every field into its schema shape."""
        cleaned = super().clean()
        for key, kind in self.kinds.items():
            if key in cleaned:
                try:
                    cleaned[key] = from_text(kind, cleaned[key])
                except forms.ValidationError as error:
                    self.add_error(key, error)
        return cleaned

    def values(self) -> dict[str, Any]:
        """Return the parsed section values."""
        return {key: self.cleaned_data[key] for key in self.kinds if key in self.cleaned_data}
