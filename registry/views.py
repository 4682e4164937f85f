"""Registry pages (server-rendered, htmx partials)."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView


class ModelListView(LoginRequiredMixin, TemplateView):
    """Placeholder replaced by the pages work."""

    template_name = "base.html"
