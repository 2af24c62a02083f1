// ${{ values.packageName }}
module.exports = {};
