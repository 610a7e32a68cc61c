"""The app tier of samples/real-stack.kdl: a small web app behind nginx.

Every GET / records the visit as a row in PostgreSQL (table visits) and counts it in Redis (key
visits), and answers with both numbers; GET /visits lists the stored rows; GET /health answers
200 once PostgreSQL and Redis both answer. Only the standard library and python3-psycopg2.
"""
import json, os, socket, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

DB = dict(
    host=os.environ.get("DB_HOST", "db"),
    dbname=os.environ.get("DB_NAME", "postgres"),
    user=os.environ.get("DB_USER", "postgres"),
    # The generated secret, handed over as a file (never in the environment).
    password=open(os.environ.get("DB_PASSWORD_FILE", "/run/secrets/db-password")).read().strip(),
    connect_timeout=3,
)
REDIS = (os.environ.get("REDIS_HOST", "cache"), int(os.environ.get("REDIS_PORT", "6379")))


def redis(*args):
    """One Redis command in RESP, over a fresh connection; returns the reply's first line."""
    cmd = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
    with socket.create_connection(REDIS, timeout=3) as s:
        s.sendall(cmd)
        reply = s.makefile("rb").readline().decode().rstrip("\r\n")
    if reply.startswith("-"):
        raise RuntimeError("redis: " + reply[1:])
    return reply[1:]


def db(sql, args=()):
    with psycopg2.connect(**DB) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def migrate():
    # The database may still be starting (or restarting) when the app does.
    for _ in range(60):
        try:
            db("CREATE TABLE IF NOT EXISTS visits (id serial PRIMARY KEY, path text NOT NULL, "
               "at timestamptz NOT NULL DEFAULT now())")
            return
        except psycopg2.OperationalError as e:
            print("waiting for the database:", str(e).strip(), flush=True)
            time.sleep(1)
    raise SystemExit("the database never answered")


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        try:
            if self.path == "/health":
                db("SELECT 1")
                redis("PING")
                self.answer(200, {"ok": True})
            elif self.path == "/visits":
                rows = db("SELECT id, path, at::text FROM visits ORDER BY id")
                self.answer(200, {"rows": [{"id": i, "path": p, "at": a} for i, p, a in rows]})
            else:
                (row_id,), = db("INSERT INTO visits (path) VALUES (%s) RETURNING id", (self.path,))
                (rows,), = db("SELECT count(*) FROM visits")
                self.answer(200, {"row": row_id, "rows": rows, "visits": int(redis("INCR", "visits"))})
        except Exception as e:  # a tier being down is an answer, not a crash
            self.answer(503, {"error": str(e).strip()})


if __name__ == "__main__":
    migrate()
    print("app listening on :8000", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
