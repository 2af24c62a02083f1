package k8srequiredlabels

get_message(parameters, _default) = msg {
  not parameters.message
  msg := _default
}

get_message(parameters, _default) = msg {
  msg := parameters.message
}

violation[{"msg": msg, "details": {"missing_labels": missing}}] {
  provided := {label | input.review.object.metadata.labels[label]}
  required := {label | label := required_labels[_]}
  missing := required - provided
  count(missing) > 0
  def_msg := sprintf("you must provide labels: %v", [missing])
  msg := get_message(input.parameters, def_msg)
}

# The constraint's parameters when the caller sends them; otherwise the
# organisation's defaults from data.yaml.
required_labels = input.parameters.labels {
  input.parameters.labels
}

required_labels = data.gatekeeper.k8srequiredlabels.labels {
  not input.parameters.labels
}
