"""The server-side alternative: flows/automations/notify-on-failure.yaml, created as
``prefect automation create --from-file`` would, fires on a failed cluster-eval run."""

from __future__ import annotations

import yaml

from cluster_eval.settings import PROJECT_ROOT

AUTOMATION = PROJECT_ROOT / "flows" / "automations" / "notify-on-failure.yaml"
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


def test_the_automation_notifies_on_a_failed_run(prefect_server, notification_block, webhook,
                                                 monkeypatch, tmp_path):
    from prefect.blocks.core import Block
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    from flows import cluster_eval as flow_module
    from flows import pipeline
    from flows.errors import InfrastructureFailure

    block_id = Block.load(notification_block)._block_document_id
    text = AUTOMATION.read_text().replace(PLACEHOLDER, str(block_id))
    (spec,) = yaml.safe_load(text)["automations"]
    with get_client(sync_client=True) as client:
        automation_id = client.create_automation(AutomationCore.model_validate(spec))
    try:
        def down(*args, **kwargs):
            raise InfrastructureFailure("no Ray dashboard answered at http://127.0.0.1:1")

        monkeypatch.setattr(pipeline, "deploy", down)
        monkeypatch.setattr(flow_module.deploy_or_reconfigure, "retries", 0)
        # no notification_block parameter: only the automation can send this one
        state = flow_module.cluster_eval(out_dir=str(tmp_path), warehouse=str(tmp_path / "w"),
                                         return_state=True)
        assert state.is_failed()
        assert webhook.arrived.wait(90), "the automation never notified"
        sent = webhook.received[0]
        assert sent["subject"].startswith("cluster-eval run ")
        assert "infrastructure: no Ray dashboard answered" in sent["body"]
        assert str(state.state_details.flow_run_id) in sent["body"]
    finally:
        with get_client(sync_client=True) as client:
            client.delete_automation(automation_id)
