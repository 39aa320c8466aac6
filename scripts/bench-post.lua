-- wrk script shared by the benchmark scripts: POST the JSON body in $BODY to the URL with
-- the bearer token in $TOKEN (authenticated GraphQL requests).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = os.getenv("BODY")
