"""The one exception type the project raises for problems a user can fix."""


class TalkingFacesError(Exception):
    """A user-facing error. The message names what is wrong and what to do about it.

    The CLI prints it as one line and exits non-zero; library code raises it and never exits.
    """
