"""The tasks of the example pipeline: each prints the flow, the task and the node arguments it received."""

import json

from selinon import SelinonTask


class PrintTask(SelinonTask):
    def run(self, node_args):
        print(f"{self.flow_name}/{self.task_name} ran with {json.dumps(node_args, sort_keys=True)}")
        return None
