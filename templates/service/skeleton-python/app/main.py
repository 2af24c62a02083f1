"""${{ values.name }}: ${{ values.description }}

Created from the Plinth `service` golden path. Traces are exported with
OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318).
"""

import os

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

SERVICE_NAME = "${{ values.name }}"
VERSION = "0.1.0"


def init_telemetry() -> None:
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", SERVICE_NAME),
            "service.version": VERSION,
            "service.namespace": "${{ values.system | parseEntityRef | pick('name') }}",
        }
    )
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true":
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


init_telemetry()
app = FastAPI(title=SERVICE_NAME, version=VERSION)
FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz")
tracer = trace.get_tracer(SERVICE_NAME)


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok", "service": SERVICE_NAME, "version": VERSION}


@app.get("/")
def hello() -> dict:
    with tracer.start_as_current_span("hello"):
        return {"message": f"hello from {SERVICE_NAME}"}
