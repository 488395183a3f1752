"""Run by the sdk-venv's interpreter (no crowdbridge there): drive a fake with the vendor's official SDK.

``python sdk_driver.py <vendor> <base url> <api key>``; prints one JSON line with what the SDK saw.
"""

import json
import sys


def scale(url: str, key: str) -> dict:
    import scaleapi
    from scaleapi.tasks import TaskType

    client = scaleapi.ScaleClient(key, api_instance_url=url + "/v1")
    client.create_batch(project="rlhf", batch_name="sdk-batch")
    task = client.create_task(TaskType.Categorization, project="rlhf", batch="sdk-batch", unique_id="sdk-item-1",
                              instruction="Which is better?", attachment_type="text", attachment="A vs B",
                              categories=["Response A", "Response B", "Tie"], callback_url="http://127.0.0.1:9/cb")
    from scaleapi.exceptions import ScaleDuplicateResource

    try:  # a plain repeat of the unique_id is refused with 409 (only a 5xx-then-409 is resolved by the SDK)
        client.create_task(TaskType.Categorization, project="rlhf", batch="sdk-batch", unique_id="sdk-item-1",
                           instruction="Which is better?", attachment_type="text", attachment="A vs B",
                           categories=["Response A", "Response B", "Tie"], callback_url="http://127.0.0.1:9/cb")
        refused = False
    except ScaleDuplicateResource:
        refused = True
    client.finalize_batch("sdk-batch")
    tasks = list(client.get_tasks(project_name="rlhf", batch_name="sdk-batch"))
    return {"task": task.id, "refused": refused, "listed": [t.id for t in tasks]}


def surge(url: str, key: str) -> dict:
    import os

    os.environ["SURGE_BASE_URL"] = url
    import surge
    from surge.questions import MultipleChoiceQuestion

    surge.api_key = key
    project = surge.Project.create(name="sdk project", questions=[MultipleChoiceQuestion(
        "Which response is better?", label="preference", options=["Response A", "Response B", "Tie"])],
        num_workers_per_task=2,
        fields_template="{{prompt}}")
    project.create_tasks([{"prompt": "p", "crowdbridge_item_id": "i1", "response_a": "a", "response_b": "b"}])
    project.launch()
    tasks = project.list_tasks()
    return {"project": project.id, "tasks": [t.id for t in tasks], "status": surge.Project.retrieve(project.id).status}


def toloka(url: str, key: str) -> dict:
    import toloka.client as toloka

    client = toloka.TolokaClient(key, url=url, retry_quotas=None)
    project = client.create_project(toloka.Project(
        public_name="Compare", public_description="d", private_comment="sdk",
        task_spec=toloka.project.task_spec.TaskSpec(
            input_spec={"item_id": toloka.project.StringSpec(), "prompt": toloka.project.StringSpec(),
                        "responses": toloka.project.JsonSpec()},
            output_spec={"result": toloka.project.StringSpec()},
            view_spec=toloka.project.view_spec.ClassicViewSpec(script="", markup="<p/>"))))
    import datetime

    pool = client.create_pool(toloka.Pool(
        project_id=project.id, private_name="sdk-pool", may_contain_adult_content=False,
        will_expire=datetime.datetime.utcnow() + datetime.timedelta(days=1), reward_per_assignment=0.01,
        assignment_max_duration_seconds=600, defaults=toloka.Pool.Defaults(default_overlap_for_new_tasks=2),
        metadata={"kind": ["pairwise"]}))
    client.create_tasks([toloka.Task(pool_id=pool.id, overlap=2, input_values={
        "item_id": "i1", "prompt": "p", "responses": ["a", "b"]})], allow_defaults=True, open_pool=True)
    return {"project": project.id, "pool": pool.id, "pool_status": client.get_pool(pool.id).status.value}


def argilla(url: str, key: str) -> dict:
    import logging
    import time

    import argilla as rg

    said: list[str] = []  # the SDK reports each log()'s "Updated N records and added M records" at INFO

    class Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    sdk_log = logging.getLogger("argilla.sdk")
    sdk_log.addHandler(Said())
    sdk_log.setLevel(logging.INFO)
    sdk_log.propagate = False

    client = rg.Argilla(api_url=url, api_key=key)
    settings = rg.Settings(
        fields=[rg.TextField(name=name) for name in ("prompt", "response_a", "response_b")],
        questions=[rg.LabelQuestion(name="preference",
                                    labels={"A": "Response A", "B": "Response B", "tie": "Tie"})],
        distribution=rg.TaskDistribution(min_submitted=2))
    dataset = rg.Dataset(name="sdk-dataset", workspace="crowdbridge", settings=settings,
                         client=client).create()  # POST dataset, fields, question; PATCH; PUT publish
    rows = [{"id": f"sdk-item-{i}", "prompt": f"p{i}", "response_a": "a", "response_b": "b"}
            for i in range(3)]  # "id" is the record's external id
    dataset.records.log(rows)
    dataset.records.log(rows)  # the same external ids again: an upsert, no new records
    logged = [m.split(": ", 1)[-1] for m in said if "records and added" in m]

    deadline = time.time() + 20  # the fake crowd answers within its turnaround
    again = client.datasets("sdk-dataset", workspace="crowdbridge")
    while True:
        seen = list(again.records(with_responses=True))
        if all(r.status == "completed" for r in seen) or time.time() > deadline:
            break
        time.sleep(0.3)
    return {"dataset": str(dataset.id), "min_submitted": again.settings.distribution.min_submitted,
            "questions": [q.name for q in again.settings.questions], "logged": logged,
            "records": {r.id: {"status": r.status, "answers": [
                {"value": x.value, "status": getattr(x.status, "value", x.status), "user": str(x.user_id)}
                for x in r.responses["preference"]]} for r in seen},
            "progress": again.progress()}


if __name__ == "__main__":
    vendor, url, key = sys.argv[1:4]
    print(json.dumps(globals()[vendor](url, key), default=str))
