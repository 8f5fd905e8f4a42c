# mining stage: rules are added by the issue that owns this stage.
