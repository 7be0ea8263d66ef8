"""The per-name TLS contexts are bounded (issue #14, defect 10: +15 KB per distinct name, never evicted).

Any local caller may present any number of SNI names; the server keeps the most recently served."""

from __future__ import annotations

import socket
import ssl

from kvlab.emulator.tls import MAX_CONTEXTS, LocalCA


def test_a_flood_of_names_keeps_at_most_the_bound_and_a_dropped_name_is_served_again(tmp_path):
    ca = LocalCA(tmp_path)
    first = ca.context_for("kv-first.localhost")
    for number in range(MAX_CONTEXTS + 20):
        ca.context_for(f"kv-flood-{number}.localhost")
    assert len(ca._contexts) == MAX_CONTEXTS
    again = ca.context_for("kv-first.localhost")
    assert again is not first  # issued anew: and it still verifies against the CA, for that name
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    left, right = socket.socketpair()
    server_side = again.wrap_socket(left, server_side=True, do_handshake_on_connect=False)
    client_side = client.wrap_socket(right, server_hostname="kv-first.localhost", do_handshake_on_connect=False)
    server_side.setblocking(False)
    client_side.setblocking(False)
    done = set()
    for _ in range(200):
        for side in (server_side, client_side):
            if side not in done:
                try:
                    side.do_handshake()
                    done.add(side)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
        if len(done) == 2:
            break
    assert len(done) == 2 and client_side.getpeercert()["subjectAltName"] == (("DNS", "kv-first.localhost"),)
    server_side.close()
    client_side.close()
