# The gateway image. The EHR (HAPI FHIR) and Redis run as their own containers (see compose.yaml).
FROM python:3.11-slim AS build
WORKDIR /app
RUN pip install --no-cache-dir uv
COPY pyproject.toml requirements.lock README.md ./
RUN uv venv /app/.venv && uv pip install --python /app/.venv/bin/python --require-hashes -r requirements.lock
COPY fhir_gateway ./fhir_gateway
COPY smart_auth ./smart_auth
COPY mappers ./mappers
COPY cache ./cache
COPY audit ./audit
COPY web ./web
COPY locales ./locales
COPY portal ./portal
COPY staff ./staff
COPY fixtures ./fixtures
COPY payments ./payments
COPY notifications ./notifications
RUN uv pip install --python /app/.venv/bin/python --no-deps .

FROM python:3.11-slim
WORKDIR /app
RUN useradd --system --uid 10001 portal && mkdir -p /state && chown portal /state
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH PORTAL_STATE_DIR=/state PYTHONUNBUFFERED=1
USER portal
EXPOSE 8000
# Loopback liveness check; with PORTAL_TLS_CERT set the port speaks https (its name is not 127.0.0.1's to verify).
HEALTHCHECK CMD python -c "import os,ssl,sys,urllib.request as u; tls=bool(os.environ.get('PORTAL_TLS_CERT')); sys.exit(u.urlopen(('https' if tls else 'http')+'://127.0.0.1:8000/healthz', context=ssl._create_unverified_context() if tls else None).status != 200)"
# TLS: set PORTAL_TLS_CERT/PORTAL_TLS_KEY, or put a TLS proxy in front and name it in PORTAL_TRUSTED_PROXIES.
CMD ["portal-serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
