"""Front ends of hostwiz: the Textual wizard (screens.app) and plain prompts (screens.plain).

Both only collect answers and show results; the work itself is done by :mod:`wizard.session`.
The wizard's screens live one module per screen or small family (start, step_list, step_form,
preview, apply, snapshot_list, recovery, dialogs, help; errors holds the shared error text).
Each returns its result with ``dismiss`` and gets plain data, never talking to the host itself
(except :class:`screens.apply.ApplyScreen`, which runs the callable it is given in a thread
worker), so each can be driven in a test with data built there. The order of the stages lives
in :meth:`screens.app.HostwizApp.run_flow`.
"""
