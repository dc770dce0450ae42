"""Dossiers: the administrative case files between a customer and the services, fed by contacts
or opened automatically, with their elements grouped by kind."""
