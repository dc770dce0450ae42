"""Referentials: the contact types and dossier classifications administrators configure, with the
templates (parties, agents, business objects and their eligibility rules) that pre-fill contacts
and dossiers."""
