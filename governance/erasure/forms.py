"""Erasure forms: a new request, an obligation's resolution, a deadline extension."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from governance.models import ExemptionGround, ObligationStatus


class ErasureRequestForm(forms.Form):
    """The subject's identifier (hashed at once, never stored) and the date the request arrived."""

    identifier = forms.CharField(max_length=512, label="Subject identifier",
                                 widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
                                 help_text="Hashed with the server key on submit; the identifier itself is never "
                                           "stored or logged.")
    received_on = forms.DateField(label="Received on", widget=forms.DateInput(attrs={"type": "date"}),
                                  initial=timezone.localdate)


class ResolveForm(forms.Form):
    """How one obligation was resolved, with its evidence."""

    status = forms.ChoiceField(choices=[c for c in ObligationStatus.choices if c[0] != ObligationStatus.PENDING])
    replacement_node = forms.IntegerField(required=False, min_value=1, label="New dataset version (lineage node id)")
    replacement_version = forms.IntegerField(required=False, min_value=1, label="Retrained version number")
    ground = forms.ChoiceField(choices=[("", "—"), *ExemptionGround.choices], required=False,
                               label="Art. 17(3) ground")
    reason = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))


class ExtendForm(forms.Form):
    """Extend the deadline by two months: the reason and the date the subject was told."""

    reason = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    notified_on = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="Subject notified on")
