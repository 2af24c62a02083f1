// Entity page: relations, docs, API definitions; catalogue pages at phone
// width (the explorer's facets drawer closed, the graph centred on its node).
(function () {
  "use strict";
  var phone = window.matchMedia && window.matchMedia("(max-width: 700px)");
  function onReady(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }
  // Facets start closed on a phone; open on wider screens.
  function drawer() {
    var d = document.getElementById("facets-drawer");
    if (!d) return;
    if (phone && phone.matches) d.removeAttribute("open");
    else d.setAttribute("open", "");
  }
  // The graph scrolled so its own node is in the middle of the view.
  function centreGraph() {
    var wrap = document.querySelector(".graph-wrap");
    var root = wrap && wrap.querySelector(".node.root rect");
    if (!root) return;
    var svg = wrap.querySelector("svg");
    var scale = svg && svg.viewBox && svg.viewBox.baseVal && svg.viewBox.baseVal.width
      ? svg.getBoundingClientRect().width / svg.viewBox.baseVal.width : 1;
    var x = (parseFloat(root.getAttribute("x")) + parseFloat(root.getAttribute("width")) / 2) * scale;
    var y = (parseFloat(root.getAttribute("y")) + parseFloat(root.getAttribute("height")) / 2) * scale;
    wrap.scrollLeft = Math.max(0, x - wrap.clientWidth / 2);
    wrap.scrollTop = Math.max(0, y - wrap.clientHeight / 2);
  }
  onReady(function () {
    drawer();
    centreGraph();
    if (phone && phone.addEventListener) phone.addEventListener("change", drawer);
  });
})();
