"""Processes: BPMN definitions deployed from bpmn/ as versions (the engine's instances, forms, inbox
and timers build on them). app/processes/engine.py is the one module that imports SpiffWorkflow."""
