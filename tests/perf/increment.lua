-- wrk: every request an increment of the counter in the URL (POST, no body, no key: the server makes the ids).
wrk.method = "POST"
