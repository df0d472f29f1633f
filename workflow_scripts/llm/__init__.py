"""The one layer through which every large-model call goes (teacher reviews, concern extraction, rubric writing,
judging): an OpenAI-compatible client with a response cache, rate limits, retries and a budget
(:mod:`.client`), the endpoints it talks to - external, vllm, demo - (:mod:`.endpoints`), and the demo server with
its stand-in policies (:mod:`.demo_server`, :mod:`.stand_in`). See the README's "LLM endpoints".

    from workflow_scripts.llm.endpoints import open_client
    from workflow_scripts.llm.request import ChatRequest
"""
