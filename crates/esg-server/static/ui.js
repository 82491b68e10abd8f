// The pages' only script: the upload form (/ui/upload). Everything else
// works without JavaScript. The API key typed into the form lives in this
// page's memory only: it is sent as the Authorization header of this
// upload to this origin and is never stored.
"use strict";
(function () {
  var ACCEPTED = ["application/pdf", "text/html", "application/xhtml+xml", "text/plain", "text/markdown"];
  var WORDS = {
    unauthorized: "No API key was accepted: paste a key made with `esg keys add`.",
    forbidden: "This API key is wrong or has been revoked.",
    payload_too_large: "The file is larger than this server accepts.",
    file_too_large: "The file is larger than this server accepts.",
    unsupported_media_type: "This kind of file is not accepted: upload a PDF, HTML or plain-text report.",
    unsupported_format: "This file is not a PDF, HTML or text report.",
    validation_failed: "Some fields are not valid.",
    empty_file: "The file is empty.",
    pdf_damaged: "The PDF is damaged and could not be read.",
    pdf_password_required: "The PDF is protected by a password.",
    pdf_unsupported_encryption: "The PDF uses an encryption this server cannot open.",
    pdf_no_text_layer: "The PDF has no text layer (a scan without text); it cannot be scored.",
    html_error_page: "The HTML file looks like an error page, not a report.",
    no_text: "No text could be extracted from the file.",
    extraction_timeout: "Reading the file took too long.",
    extraction_memory_limit: "Reading the file needed too much memory.",
    extraction_failed: "The file could not be read.",
    storage_error: "The server could not store the report; try again later.",
    rate_limited: "Too many requests; wait a moment and try again.",
    too_many_requests: "The server is busy; wait a moment and try again."
  };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text) { e.textContent = text; }
    if (cls) { e.className = cls; }
    return e;
  }

  function show(status, parts, cls) {
    status.replaceChildren();
    var p = el("p", null, cls);
    parts.forEach(function (x) { p.appendChild(typeof x === "string" ? document.createTextNode(x) : x); });
    status.appendChild(p);
  }

  function setup(form) {
    var status = document.getElementById("u-status");
    var bar = document.getElementById("u-progress");
    var button = document.getElementById("u-submit");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var company = document.getElementById("u-company").value.trim();
      var year = document.getElementById("u-year").value.trim();
      var sector = document.getElementById("u-sector").value.trim();
      var key = document.getElementById("u-key").value.trim();
      var files = document.getElementById("u-file").files;
      var missing = [];
      if (!company) { missing.push("company"); }
      if (!year) { missing.push("year"); }
      if (!files || files.length === 0) { missing.push("file"); }
      if (missing.length) {
        show(status, ["Fill in: " + missing.join(", ") + "."], "error");
        return;
      }
      var file = files[0];
      var q = "company=" + encodeURIComponent(company) + "&year=" + encodeURIComponent(year) +
        "&filename=" + encodeURIComponent(file.name);
      if (sector) { q += "&sector=" + encodeURIComponent(sector); }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/documents?" + q);
      if (key) { xhr.setRequestHeader("Authorization", "Bearer " + key); }
      xhr.setRequestHeader("Content-Type", ACCEPTED.indexOf(file.type) >= 0 ? file.type : "application/octet-stream");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
      });
      xhr.addEventListener("load", function () {
        button.disabled = false;
        bar.value = 100;
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if ((xhr.status === 200 || xhr.status === 201) && body && body.document) {
          var d = body.document;
          var link = el("a", "Open the scorecard of " + d.company + " " + d.year);
          link.href = "/ui/companies/" + encodeURIComponent(d.company_key) + "?year=" + d.year;
          link.id = "u-scorecard";
          var what = xhr.status === 201 ? "Stored: " : "Already on file: ";
          show(status, [what + d.filename + " (" + d.pages + " pages, " + d.chunks + " passages). ", link], "success");
          return;
        }
        var code = body && body.error ? body.error.code : "";
        var words = WORDS[code] || "The upload failed.";
        var detail = body && body.error && body.error.message ? " (" + body.error.message + ")" : "";
        show(status, ["Not uploaded: " + words + detail + " [HTTP " + xhr.status + (code ? ", " + code : "") + "]"], "error");
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        show(status, ["Not uploaded: the server could not be reached."], "error");
      });
      button.disabled = true;
      bar.value = 0;
      show(status, ["Uploading " + file.name + "…"], null);
      xhr.send(file);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (form) { setup(form); }
  });
})();
