"""Azure OpenAI: deployments in the path, the api-key header; nothing Azure-specific to configure."""

import openai

import spendscope

spendscope.instrument(service_name="azure-app")

# Reads AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and OPENAI_API_VERSION.
client = openai.AzureOpenAI()
reply = client.chat.completions.create(
    model="my-gpt-4o-deployment",  # the deployment name: recorded as the request model
    messages=[{"role": "user", "content": "Say hi"}],
)
print(reply.choices[0].message.content)
