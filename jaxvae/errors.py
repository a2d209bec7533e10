"""The one exception type for mistakes a user can fix (config, data, workdir, flags)."""


class UserError(Exception):
  """A problem in the user's input; the message names it and the fix. The CLI exits with code 2."""
