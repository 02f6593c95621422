"""The FTP front-end (pyftpdlib): logins from the Authenticator, each confined to its tree with
the permissions of `servers.policy` (contract 4), the upload rules of `servers.dropbox`, and the
`[limits]` (connection caps, login lockout, idle and login timeouts, passive ports in range).
"""

from mockserver.servers.dropbox import FileTooLarge, OnUpload
from mockserver.servers.ftp.server import FtpServer

__all__ = ["FileTooLarge", "FtpServer", "OnUpload"]
