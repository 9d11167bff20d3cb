"""An application instrumented with the official OpenTelemetry Python SDK, configured only by
the standard environment (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_SERVICE_NAME): it records a request span with a GenAI chat
generation under it, exports them over OTLP/HTTP protobuf, and prints their ids as JSON."""

import json
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


class Recording(OTLPSpanExporter):
    """The SDK's exporter, remembering whether its exports succeeded."""

    results = []

    def export(self, spans):
        result = super().export(spans)
        self.results.append(result.name)
        return result


def main():
    provider = TracerProvider(resource=Resource.create({"service.version": "py-1"}))
    exporter = Recording()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("trustplane.e2e.python", "0.1.0")
    with tracer.start_as_current_span("answer", attributes={"user.id": "py-user"}) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 321,
                "gen_ai.usage.output_tokens": 123,
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hello from python"}]}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "hi"}]}]),
            },
        ) as gen:
            pass
    provider.shutdown()
    ctx = root.get_span_context()
    print(json.dumps({
        "trace_id": format(ctx.trace_id, "032x"),
        "root_id": format(ctx.span_id, "016x"),
        "gen_id": format(gen.get_span_context().span_id, "016x"),
        "results": Recording.results,
    }))
    return 0 if Recording.results == ["SUCCESS"] else 1


if __name__ == "__main__":
    sys.exit(main())
