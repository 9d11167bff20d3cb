# chdbtest's engine: reads one JSON request per line on stdin ({"sql": "..."}), runs it in one
# chDB session (an in-process ClickHouse) and answers one JSON line on stdout: {"result": the
# JSONCompact text} or {"error": "..."}.
import json
import sys

from chdb import session

sess = session.Session(sys.argv[1])
out = sys.stdout
for line in sys.stdin:
    req = json.loads(line)
    try:
        res = sess.query(req["sql"], "JSONCompact")
        text = res.bytes().decode("utf-8") if res is not None else ""
        out.write(json.dumps({"result": text}) + "\n")
    except Exception as e:  # the error goes back to the test, which fails with it
        out.write(json.dumps({"error": str(e)}) + "\n")
    out.flush()
