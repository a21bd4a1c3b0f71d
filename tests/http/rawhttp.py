"""A minimal HTTP/1.1 client over a raw socket, for pipelining and malformed-request tests."""
import socket


class RawResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body

    def __repr__(self):
        return f"RawResponse({self.status} {self.reason!r}, {self.body[:200]!r})"


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


class Reader:
    """Buffered reads of responses from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        try:
            while True:
                self._fill()
        except EOFError:
            pass
        out, self.buf = self.buf, b""
        return out

    def response(self, head_request=False):
        status_line = self.line().decode("latin-1")
        version, _, rest = status_line.partition(" ")
        assert version.startswith("HTTP/1."), status_line
        code, _, reason = rest.partition(" ")
        headers = {}
        while True:
            line = self.line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(code)
        if head_request or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    break
                body += self.exactly(size)
                self.exactly(2)
        elif "content-length" in headers:
            body = self.exactly(int(headers["content-length"]))
        else:
            body = self.rest()
        return RawResponse(status, reason, headers, body)


def send_and_read(port, data, timeout=10):
    """Sends data on a new connection and reads one response."""
    with connect(port, timeout) as s:
        s.sendall(data)
        return Reader(s).response()
