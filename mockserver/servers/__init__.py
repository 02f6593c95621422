"""The protocol front-ends: FTP (pyftpdlib, `servers.ftp`), SFTP (asyncssh, `servers.sftp`) and
the HTTP control API; each confines a login to its tree through `servers.policy`.
"""
