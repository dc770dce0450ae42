"""Dunning ("relance"): invoices past their due date open relaunch dossiers by themselves (issue 9)."""
