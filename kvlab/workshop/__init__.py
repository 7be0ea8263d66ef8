"""The class dashboard: an instructor's live view of a workshop's check results.

``kvlab workshop serve`` runs the service (`service`); learners join it with
``kvlab workshop join URL --name NAME`` or ``KVLAB_WORKSHOP`` (`learner`), and
from then on every check result their lessons produce is sent to it in the
background. What crosses the wire is the check's record (`records`): lesson,
exercise, status and the check's message, never code or secret values.
"""
