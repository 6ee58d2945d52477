"""Span attribute names: the wire contract between the SDK and the collector.

OpenTelemetry GenAI semantic conventions where they exist, ``spendscope.*`` for what no convention
covers. Both sides import these names from here so that a rename is one edit. This module is pure
data: it imports nothing.
"""

from __future__ import annotations

__all__ = [
    "ATTEMPT",
    "BATCH",
    "ERROR_TYPE",
    "FEATURE",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_REQUEST_STREAM",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_SYSTEM",
    "GEN_AI_TIME_TO_FIRST_CHUNK",
    "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS",
    "GEN_AI_USAGE_COMPLETION_TOKENS",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_USAGE_PROMPT_TOKENS",
    "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
    "HTTP_RESPONSE_STATUS_CODE",
    "OPENAI_API_TYPE",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROCESSING_MS",
    "OPENAI_PROJECT",
    "OPENAI_REQUEST_ID",
    "OPENAI_REQUEST_SERVICE_TIER",
    "OPENAI_RESPONSE_SERVICE_TIER",
    "RATELIMIT_LIMIT_REQUESTS",
    "RATELIMIT_LIMIT_TOKENS",
    "RATELIMIT_REMAINING_REQUESTS",
    "RATELIMIT_REMAINING_TOKENS",
    "RATELIMIT_RESET_REQUESTS_S",
    "RATELIMIT_RESET_TOKENS_S",
    "RETRY_AFTER_S",
    "SERVER_ADDRESS",
    "SERVER_PORT",
    "SERVICE_NAME",
    "STREAM_COMPLETED",
    "TAG_PREFIX",
    "USAGE_INPUT_AUDIO_TOKENS",
    "USAGE_OUTPUT_AUDIO_TOKENS",
    "USAGE_SOURCE",
    "USER",
]

# --- OpenTelemetry GenAI semantic conventions -------------------------------------------------
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"  # deprecated predecessor of gen_ai.provider.name
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # includes cached input
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"  # includes reasoning
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"  # successor name
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"  # deprecated input_tokens
GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"  # deprecated output_tokens
GEN_AI_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
OPENAI_API_TYPE = "openai.api.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
ERROR_TYPE = "error.type"
SERVICE_NAME = "service.name"  # a resource attribute

# --- spendscope namespace -----------------------------------------------------------------------
RATELIMIT_LIMIT_REQUESTS = "spendscope.ratelimit.limit_requests"
RATELIMIT_REMAINING_REQUESTS = "spendscope.ratelimit.remaining_requests"
RATELIMIT_RESET_REQUESTS_S = "spendscope.ratelimit.reset_requests_s"
RATELIMIT_LIMIT_TOKENS = "spendscope.ratelimit.limit_tokens"
RATELIMIT_REMAINING_TOKENS = "spendscope.ratelimit.remaining_tokens"
RATELIMIT_RESET_TOKENS_S = "spendscope.ratelimit.reset_tokens_s"
RETRY_AFTER_S = "spendscope.retry_after_s"
ATTEMPT = "spendscope.attempt"
OPENAI_REQUEST_ID = "spendscope.openai.request_id"
OPENAI_PROJECT = "spendscope.openai.project"
OPENAI_ORGANIZATION = "spendscope.openai.organization"
OPENAI_PROCESSING_MS = "spendscope.openai.processing_ms"
USAGE_SOURCE = "spendscope.usage.source"  # "response" | "stream" | "missing"
USAGE_INPUT_AUDIO_TOKENS = "spendscope.usage.input_audio_tokens"
USAGE_OUTPUT_AUDIO_TOKENS = "spendscope.usage.output_audio_tokens"
STREAM_COMPLETED = "spendscope.stream.completed"
USER = "spendscope.user"
FEATURE = "spendscope.feature"
TAG_PREFIX = "spendscope.tag."
BATCH = "spendscope.batch"  # true when the call was billed through the Batch API
