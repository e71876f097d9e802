#!/usr/bin/env bash
# Smoke test for a running EHR sandbox. Usage: ehr_sandbox/smoke_test.sh [base-url]
# Writes test data (ids prefixed "smoke-")! Run it against a throw-away state dir.
set -u
B="${1:-http://127.0.0.1:${EHR_PORT:-8080}/fhir}"
J='Content-Type: application/fhir+json'
fail=0; pass=0
check() { # name expected actual
  if [ "$2" = "$3" ]; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1: expected $2, got $3"; fi
}
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
T0=$(date -u +%Y-%m-%dT%H:%M:%SZ); sleep 1

check "metadata" 200 "$(code "$B/metadata")"
check "PUT Patient/smoke-pt-0001 (client id, create)" 201 "$(code -X PUT -H "$J" "$B/Patient/smoke-pt-0001" \
  -d '{"resourceType":"Patient","id":"smoke-pt-0001","identifier":[{"system":"http://x","value":"smoke-1"}],"name":[{"family":"Smoke","given":["Sam"]}],"birthDate":"1980-01-02"}')"
check "PUT numeric client id" 201 "$(code -X PUT -H "$J" "$B/Patient/987654" -d '{"resourceType":"Patient","id":"987654"}')"
check "read" 200 "$(code "$B/Patient/smoke-pt-0001")"
check "vread" 200 "$(code "$B/Patient/smoke-pt-0001/_history/1")"

body='{"resourceType":"Patient","identifier":[{"system":"http://x","value":"1"}],"name":[{"family":"Cond"}]}'
check "conditional create #1" 201 "$(code -X POST -H "$J" -H 'If-None-Exist: identifier=http://x|1' "$B/Patient" -d "$body")"
check "conditional create #2 (no new resource)" 200 "$(code -X POST -H "$J" -H 'If-None-Exist: identifier=http://x|1' "$B/Patient" -d "$body")"
check "only one match for identifier=http://x|1" 1 "$(curl -s "$B/Patient?identifier=http://x|1&_summary=count" | jq_py "d['total']")"

check "update with wrong If-Match -> 412" 412 "$(code -X PUT -H "$J" -H 'If-Match: W/"99"' "$B/Patient/smoke-pt-0001" \
  -d '{"resourceType":"Patient","id":"smoke-pt-0001","name":[{"family":"Nope"}]}')"
check "update with right If-Match -> 200" 200 "$(code -X PUT -H "$J" -H 'If-Match: W/"1"' "$B/Patient/smoke-pt-0001" \
  -d '{"resourceType":"Patient","id":"smoke-pt-0001","identifier":[{"system":"http://x","value":"smoke-1"}],"name":[{"family":"Smoke","given":["Sam"]}],"gender":"other","birthDate":"1980-01-02"}')"

tx='{"resourceType":"Bundle","type":"transaction","entry":[
 {"fullUrl":"urn:uuid:5d3a7c9e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","identifier":[{"system":"http://x","value":"smoke-tx"}]},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=http://x|smoke-tx"}},
 {"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"urn:uuid:5d3a7c9e-0000-4000-8000-000000000001"},"effectiveDateTime":"2024-01-01"},"request":{"method":"POST","url":"Observation"}}]}'
check "transaction with 2 entries" 200 "$(code -X POST -H "$J" "$B" -d "$tx")"
batch='{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/smoke-pt-0001"}},{"request":{"method":"GET","url":"Patient/smoke-missing"}}]}'
check "batch entry statuses" "['200 OK', '404 Not Found']" "$(curl -s -X POST -H "$J" "$B" -d "$batch" | jq_py "[e['response']['status'] for e in d['entry']]")"

for i in 1 2 3 4 5; do
  curl -s -o /dev/null -X POST -H "$J" "$B/Observation" -d '{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/smoke-pt-0001"},"effectiveDateTime":"2024-02-0'$i'"}'
done
page1=$(curl -s "$B/Observation?patient=smoke-pt-0001&_count=2")
check "search page 1 size" 2 "$(echo "$page1" | jq_py "len(d['entry'])")"
next=$(echo "$page1" | jq_py "[l['url'] for l in d['link'] if l['relation']=='next'][0]")
page2=$(curl -s "$next")
check "search page 2 (next link) size" 2 "$(echo "$page2" | jq_py "len(d['entry'])")"
check "_include" 1 "$(curl -s "$B/Observation?patient=smoke-pt-0001&_include=Observation:subject" | jq_py "[e['search']['mode'] for e in d['entry']].count('include')")"
check "_revinclude" 6 "$(curl -s "$B/Patient?_id=smoke-pt-0001&_revinclude=Observation:subject" | jq_py "len(d['entry'])")"
check "Patient/\$everything" 6 "$(curl -s "$B/Patient/smoke-pt-0001/\$everything" | jq_py "len(d['entry'])")"
check "Patient/\$summary is an IPS document" "document Composition" "$(curl -s "$B/Patient/smoke-pt-0001/\$summary" | jq_py "d['type'] + ' ' + d['entry'][0]['resource']['resourceType']")"
check "_history?_since (system)" 200 "$(code "$B/_history?_since=$T0")"
check "_history?_since has entries" True "$(curl -s "$B/_history?_since=$T0" | jq_py "len(d.get('entry',[]))>0")"
check "type _history" 200 "$(code "$B/Patient/_history?_since=$T0")"
check "instance _history versions" "['2', '1']" "$(curl -s "$B/Patient/smoke-pt-0001/_history" | jq_py "[e['resource']['meta']['versionId'] for e in d['entry']]")"
check "\$validate" 200 "$(code -X POST -H "$J" "$B/Observation/\$validate" -d '{"resourceType":"Observation","status":"final","code":{"text":"x"}}')"
check "search Patient by name" 1 "$(curl -s "$B/Patient?name=smoke&birthdate=1980-01-02&_summary=count" | jq_py "d['total']")"
check "search Observation by category/code/date" 5 "$(curl -s "$B/Observation?patient=smoke-pt-0001&category=vital-signs&code=http://loinc.org|8867-4&date=ge2024-02-01&_summary=count" | jq_py "d['total']")"
check "conditional delete (multiple)" 200 "$(code -X DELETE "$B/Observation?patient=smoke-pt-0001")"
check "delete" 200 "$(code -X DELETE "$B/Patient/smoke-pt-0001")"
check "read deleted -> 410" 410 "$(code "$B/Patient/smoke-pt-0001")"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
