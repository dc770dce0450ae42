"""Contacts: every interaction with a customer, whatever the channel, and the contact types whose
templates pre-fill the parties, agents and business objects that accompany it."""
