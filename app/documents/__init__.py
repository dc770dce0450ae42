"""Documents: letters generated from .docx templates (rendering, templates, dossier elements)."""
