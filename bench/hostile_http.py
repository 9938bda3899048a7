#!/usr/bin/env python3
"""What a hostile HTTP client costs a sluice-broker: a 50 MB header line, a 512 MiB chunked body,
and a header trickled one byte every 0.5 s, against the real binary with the shipped
eu-central config. Prints, per attack, how much the broker took before refusing, its answer, and
its peak RSS (VmHWM-style sampling of VmRSS).
Usage: bench/hostile_http.py BIN_DIR   (e.g. build/bin; an older build's bin to compare)"""
import os, shutil, socket, subprocess, sys, tempfile, time

bin_dir = sys.argv[1]
work = tempfile.mkdtemp(prefix="sluice-bench-hostile-")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
broker = subprocess.Popen([os.path.join(bin_dir, "sluice-broker"), "--config",
                           "config/broker-eu-central.yaml", "--set", "http.port=%d" % port,
                           "--set", "broker.data_dir=" + work + "/data"],
                          stdout=open(work + "/broker.log", "w"), stderr=subprocess.STDOUT)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
        except OSError:
            time.sleep(0.1)

    def rss_mib():
        for line in open("/proc/%d/status" % broker.pid):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
        return -1

    def conn():
        c = socket.create_connection(("127.0.0.1", port)); c.settimeout(3); return c

    c, sent, peak = conn(), 0, 0
    try:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(800):
            c.sendall(b"a" * 65536); sent += 65536
        c.sendall(b"\r\n\r\n"); answer = c.recv(60)
    except OSError as e:
        answer = ("connection closed (%s)" % e.__class__.__name__).encode()
    print("50 MB header line:   broker took %4d MiB, answer %-45r peak RSS %5d MiB"
          % (sent >> 20, answer[:45], rss_mib()))
    c.close()

    c, sent, peak = conn(), 0, 0
    try:
        c.sendall(b"POST /v1/topics/t/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"a" * 65536 + b"\r\n"
        for i in range(8192):
            c.sendall(chunk); sent += 65536
            if i % 256 == 0:
                peak = max(peak, rss_mib())
        c.sendall(b"0\r\n\r\n"); answer = c.recv(60)
    except OSError as e:
        answer = ("connection closed (%s)" % e.__class__.__name__).encode()
    print("512 MiB chunked body: broker took %4d MiB, answer %-45r peak RSS %5d MiB"
          % (sent >> 20, answer[:45], max(peak, rss_mib())))
    c.close()

    c, t0, open_ = conn(), time.time(), True
    c.sendall(b"GET /healthz HTTP/1.1\r\n")
    while time.time() - t0 < 15 and open_:
        try:
            c.sendall(b"X"); time.sleep(0.5)
            c.setblocking(False)
            try:
                open_ = c.recv(10) != b""
            except BlockingIOError:
                pass
            c.setblocking(True)
        except OSError:
            open_ = False
    print("trickled header:     %s after %.1f s" % ("still open" if open_ else "closed", time.time() - t0))
finally:
    broker.kill(); broker.wait()
    shutil.rmtree(work, ignore_errors=True)
