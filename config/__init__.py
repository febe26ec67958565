"""Stack files (`Pulumi.<stack>.yaml`) and the typed settings that read them."""
