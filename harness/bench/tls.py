"""TLS vs plain on one standalone node, side by side: `python -m harness.bench.tls`.

redis-benchmark (Debian's is built with TLS) runs SET and GET against the node's plain port
and its TLS port (client certificates required), interleaved round by round so both see the
same machine load. Prints requests/s and p50/p99 per round and the TLS/plain ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from harness.bench.rb import RbResult, run_once
from harness.bench.servers import aspen_node, free_port


def _certs(where: Path) -> tuple[Path, Path, Path, Path, Path]:
    import trustme  # a test dependency: certificates made for this run only

    ca = trustme.CA()
    server, client = ca.issue_cert("127.0.0.1"), ca.issue_cert("bench.aspen.test")
    paths = [where / n for n in ("ca.crt", "node.crt", "node.key", "client.crt", "client.key")]
    ca.cert_pem.write_to_path(str(paths[0]))
    server.cert_chain_pems[0].write_to_path(str(paths[1]))
    server.private_key_pem.write_to_path(str(paths[2]))
    client.cert_chain_pems[0].write_to_path(str(paths[3]))
    client.private_key_pem.write_to_path(str(paths[4]))
    return paths[0], paths[1], paths[2], paths[3], paths[4]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="aspen-tls-bench-") as tmp:
        ca, cert, key, client_cert, client_key = _certs(Path(tmp))
        tls_port = free_port()
        config = (f'[tls]\nport = {tls_port}\ncert_file = "{cert}"\nkey_file = "{key}"\n'
                  f'ca_cert_file = "{ca}"\n')
        tls_flags = ["--tls", "--cacert", str(ca), "--cert", str(client_cert),
                     "--key", str(client_key)]
        with aspen_node(config=config) as node:
            results: dict[tuple[str, int, str], list[RbResult]] = {}
            for r in range(args.rounds):
                for test in ("set", "get"):
                    for pipeline in (1, 16):
                        for name, port, extra in (("plain", node.port, []),
                                                  ("tls", tls_port, tls_flags)):
                            res, _ = run_once(port, test, args.clients, args.requests, pipeline,
                                              3, 300, extra)
                            results.setdefault((test, pipeline, name), []).append(res)
                            print(f"round {r + 1} {test.upper()} -P {pipeline} {name:5}: "
                                  f"{res.rps:>9,.0f} req/s  p50 {res.p50_ms:.3f} ms  "
                                  f"p99 {res.p99_ms} ms", flush=True)
    print(f"\nmedian of rounds (one standalone node, -c {args.clients}):")
    for test in ("set", "get"):
        for pipeline in (1, 16):
            plain = statistics.median(x.rps for x in results[(test, pipeline, "plain")])
            tls = statistics.median(x.rps for x in results[(test, pipeline, "tls")])
            p99 = statistics.median(x.p99_ms or 0 for x in results[(test, pipeline, "tls")])
            print(f"  {test.upper()} -P {pipeline:>2}: plain {plain:>9,.0f}  tls {tls:>9,.0f} "
                  f"req/s ({tls / plain:.2f}x), tls p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
